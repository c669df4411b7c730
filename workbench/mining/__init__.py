"""Negative mining: walk ground-truth proofs in Lean, label policy candidates, write a record tree.

``labels`` (pure rules and the record tree) → ``walk`` (one theorem) → ``run`` (many theorems, output,
resume, summary) → ``cli`` / notebooks. ``report`` reads mined outputs for analysis (notebook 03).
"""
