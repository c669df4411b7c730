import pytest
import torch

from workbench.ebm.model import EnergyHead, EnergyHeadConfig, expected_num_parameters


def test_parameter_count_matches_reference_layout():
    # 4096*2048+2048 + 2048*1024+1024 + 1024*512+512 + 512 (no final bias) + 1 (log-temperature):
    # exactly the reference's 11,014,145 (SPEC §4), so the layout is the same.
    model = EnergyHead(EnergyHeadConfig())
    assert model.num_parameters() == 11_014_145
    assert expected_num_parameters(model.config) == 11_014_145
    assert model.net[-1].bias is None


def test_spectral_norm_keeps_parameter_count_and_persists_vectors():
    model = EnergyHead(EnergyHeadConfig(d_encoder=384, spectral_norm=True))
    assert model.num_parameters() == expected_num_parameters(model.config)
    keys = model.state_dict().keys()
    assert sum(k.endswith("._u") for k in keys) == 4 and sum(k.endswith("._v") for k in keys) == 4


def test_local_encoder_width_and_polarity():
    torch.manual_seed(0)
    model = EnergyHead(EnergyHeadConfig(d_encoder=384)).eval()
    x = torch.randn(5, 3, 384)
    e = model(x)  # [..., d] -> [...]
    assert e.shape == (5, 3)
    assert torch.equal(model.score(x), -e)
    with pytest.raises(ValueError, match="width 384"):
        model(torch.randn(2, 4096))


def test_spectral_norm_vectors_not_redrawn_in_eval():
    torch.manual_seed(0)
    model = EnergyHead(EnergyHeadConfig(d_encoder=16, d_hidden1=32, d_hidden2=16, d_hidden3=8, spectral_norm=True))
    x = torch.randn(4, 16)
    model.train()
    model(x)  # one power iteration step in training mode
    model.eval()
    before = {k: v.clone() for k, v in model.state_dict().items() if k.endswith(("_u", "_v"))}
    e1, e2 = model(x), model(x)
    assert torch.equal(e1, e2)
    after = {k: v for k, v in model.state_dict().items() if k.endswith(("_u", "_v"))}
    assert all(torch.equal(before[k], after[k]) for k in before)
    model.train()
    model(x)
    changed = [k for k, v in model.state_dict().items() if k in before and not torch.equal(before[k], v)]
    assert changed, "training mode should advance the power iteration"


def test_spectral_norm_layers_are_lipschitz_one():
    torch.manual_seed(0)
    model = EnergyHead(EnergyHeadConfig(d_encoder=16, d_hidden1=32, d_hidden2=16, d_hidden3=8, spectral_norm=True))
    model.train()
    for _ in range(50):  # let the power iteration converge
        model(torch.randn(2, 16))
    model.eval()
    for layer in (model.net[0], model.net[3], model.net[6], model.net[9]):
        assert torch.linalg.matrix_norm(layer.weight, ord=2).item() == pytest.approx(1.0, abs=1e-3)


def test_temperature_is_clamped():
    model = EnergyHead(EnergyHeadConfig(d_encoder=8, d_hidden1=8, d_hidden2=8, d_hidden3=8))
    assert model.temperature.item() == pytest.approx(0.1, rel=0.01)
    with torch.no_grad():
        model.log_temperature.fill_(-50.0)
    assert model.temperature.item() == pytest.approx(torch.exp(torch.tensor(-5.0)).item())


def test_config_validation_and_round_trip():
    cfg = EnergyHeadConfig(d_encoder=384, spectral_norm=True)
    assert EnergyHeadConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="unknown field"):
        EnergyHeadConfig.from_dict({**cfg.to_dict(), "bogus": 1})
    with pytest.raises(ValueError, match="dropout"):
        EnergyHeadConfig(dropout=1.5)


def test_input_standardization_uses_buffers_not_parameters():
    torch.manual_seed(0)
    cfg = EnergyHeadConfig(d_encoder=8, d_hidden1=8, d_hidden2=8, d_hidden3=8, dropout=0.0)
    model = EnergyHead(cfg).eval()
    x = torch.randn(100, 8) * 5 + 3
    raw = EnergyHead(EnergyHeadConfig(**{**cfg.to_dict(), "standardize_inputs": False})).eval()
    raw.load_state_dict(model.state_dict())
    before = model.num_parameters()
    model.set_input_statistics(x)
    assert model.num_parameters() == before
    assert {"input_mean", "input_std"} <= set(model.state_dict())
    z = (x - x.mean(0)) / x.std(0, unbiased=False)
    torch.testing.assert_close(model(x), raw(z))


def test_report_banner_never_calls_the_hand_written_sample_real():
    from workbench.ebm.plots import simulated_banner
    from workbench.traces import bundled_sample_path

    assert "bundled sample" in simulated_banner(False, str(bundled_sample_path()))
    assert "real" not in simulated_banner(False, str(bundled_sample_path())).split("Not simulated")[0]
    assert "test.json" in simulated_banner(False, "/data/random/test.json")
    assert "SIMULATED" in simulated_banner(True, str(bundled_sample_path()))
