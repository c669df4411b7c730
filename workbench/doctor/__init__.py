"""`workbench doctor`: a real Lean (Pantograph), SGLang server and encoder checked against every assumption.

``checks`` (the vocabulary: verdicts, rows, options) → ``lean`` / ``sglang`` / ``encoder`` (one module per
system, each through the client mining uses) and ``report`` (the table, ``doctor.json``, the exit status) →
``run`` (which systems, from mining's settings) → ``cli`` (``workbench doctor``).
"""

from workbench.doctor.checks import SYSTEMS, Check, DetailTable, DoctorOptions, Verdict
from workbench.doctor.report import DoctorReport
from workbench.doctor.run import configured_systems, doctor, doctor_async, doctor_configured

__all__ = ["SYSTEMS", "Check", "DetailTable", "DoctorOptions", "Verdict", "DoctorReport", "configured_systems",
           "doctor", "doctor_async", "doctor_configured"]
