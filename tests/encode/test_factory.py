import pytest

from workbench.encode import PLAIN_TEMPLATE, SidecarEncoder
from workbench.encode.factory import make_encoder


def test_url_gives_sidecar_with_identity():
    enc = make_encoder("http://127.0.0.1:9/", template=PLAIN_TEMPLATE, hidden_size=8, model="prover-7b", batch_size=4)
    assert isinstance(enc, SidecarEncoder)
    assert (enc.identity.model, enc.identity.dim, enc.identity.template) == ("prover-7b", 8, PLAIN_TEMPLATE)


def test_unknown_spec_is_refused_with_the_choices():
    with pytest.raises(ValueError, match="'local'.*http"):
        make_encoder("bert")
