"""LoRA tools on real safetensors files: metadata without loading tensors, hostile files, verify, the fast
resize against a direct reconstruction and against kohya's own resize outputs (../shared/fixtures), jobs,
the CLI, and publishing to a local server speaking the Hub's HTTP API."""
from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from safetensors import safe_open
from safetensors.numpy import save_file

import lora_nb.lora as L
from lora_nb.errors import ConfigError, LoraFileError, SecretError
from lora_nb.progress.events import JobStatus
from lora_nb.lora.header import read_header
from lora_nb.lora.info import module_pairs
from lora_nb.lora.rank_resize import choose_rank

FIX = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "kohya" / "loras"
needs_fixtures = pytest.mark.skipif(not (FIX / "demo.safetensors").exists(), reason="../shared/fixtures/kohya/loras not present")


def make_lora(path: Path, rank: int = 8, alpha: float = 4.0, conv: bool = True, seed: int = 0, dtype=np.float32,
              metadata: dict | None = None) -> Path:
    """kohya-named LoRA: two linear modules (SD 1.5 names) and one 3x3 conv."""
    rng = np.random.default_rng(seed)
    t = {}
    for name, fin, fout in (("lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q", 320, 320),
                            ("lora_te_text_model_encoder_layers_0_mlp_fc1", 768, 3072)):
        t[f"{name}.lora_down.weight"] = rng.normal(0, 0.1, (rank, fin)).astype(dtype)
        t[f"{name}.lora_up.weight"] = rng.normal(0, 0.1, (fout, rank)).astype(dtype)
        t[f"{name}.alpha"] = np.array(alpha, dtype)
    if conv:
        name = "lora_unet_down_blocks_0_resnets_0_conv1"
        t[f"{name}.lora_down.weight"] = rng.normal(0, 0.1, (rank, 320, 3, 3)).astype(dtype)
        t[f"{name}.lora_up.weight"] = rng.normal(0, 0.1, (320, rank, 1, 1)).astype(dtype)
        t[f"{name}.alpha"] = np.array(alpha, dtype)
    save_file(t, str(path), metadata=metadata or {"ss_network_dim": str(rank), "ss_network_alpha": str(alpha),
                                                 "ss_tag_frequency": json.dumps({"10_alice": {"alice": 12, "smile": 3}}),
                                                 "ss_num_epochs": "10", "ss_training_comment": "hello"})
    return path


def delta(f, block, down, up, alpha_key):
    d, u = f.get_tensor(down).astype(np.float64), f.get_tensor(up).astype(np.float64)
    r = d.shape[0]
    a = float(f.get_tensor(alpha_key)) if alpha_key else r
    return (u.reshape(u.shape[0], -1) @ d.reshape(r, -1)) * a / r


def rel_fro_difference(a, b, down, up, alpha_key):
    """||Wa - Wb||_F / ||Wb||_F for two LoRA modules, from r x r products (no full weight is formed)."""
    def factors(f):
        d, u = f.get_tensor(down).astype(np.float64), f.get_tensor(up).astype(np.float64)
        r = d.shape[0]
        return u.reshape(u.shape[0], -1) * (float(f.get_tensor(alpha_key)) / r), d.reshape(r, -1)

    (ua, da), (ub, db) = factors(a), factors(b)
    inner = lambda u1, d1, u2, d2: float(((u1.T @ u2) * (d1 @ d2.T)).sum())        # trace(W1^T W2)
    aa, bb, ab = inner(ua, da, ua, da), inner(ub, db, ub, db), inner(ua, da, ub, db)
    diff = max(aa + bb - 2 * ab, 0.0) ** 0.5
    return diff / bb ** 0.5 if bb else diff              # an all-zero module (untrained) must stay zero


# -- metadata and hostile files ------------------------------------------------------------------

def test_info_reads_the_header_only(tmp_path, monkeypatch):
    p = make_lora(tmp_path / "a.safetensors")
    import safetensors

    monkeypatch.setattr(safetensors, "safe_open", None)       # any tensor loading would fail now
    i = L.lora_info(p)
    assert (i.rank, i.alpha, i.network, i.family, i.conv, i.modules, i.dtype) == (8, 4.0, "locon", "sd15", True, 3, "F32")
    assert i.training["ss_num_epochs"] == 10 and i.trigger_words[0] == "alice"
    assert L.read_metadata(p)["ss_training_comment"] == "hello"


def test_metadata_round_trip(tmp_path):
    meta = {"ss_network_dim": "8", "ss_tag_frequency": json.dumps({"a": {"ü tag": 1}}), "modelspec.title": "Ω"}
    p = make_lora(tmp_path / "m.safetensors", metadata=meta)
    assert L.read_metadata(p) == meta


@pytest.mark.parametrize("mutate, message", [
    (lambda b: b[:5], "too short"),
    (lambda b: struct.pack("<Q", 10**12) + b[8:], "declares a 1,000,000,000,000-byte header"),
    (lambda b: b[:len(b) // 2], "points outside the file"),
    (lambda b: b[:8] + b"{not json" + b[17:], "not valid JSON"),
])
def test_hostile_files(tmp_path, mutate, message):
    good = make_lora(tmp_path / "good.safetensors").read_bytes()
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(mutate(good))
    with pytest.raises(LoraFileError, match=message):
        read_header(bad)
    with pytest.raises(LoraFileError):
        L.verify(bad)


def test_unknown_dtype_is_refused(tmp_path):
    header = json.dumps({"x.lora_down.weight": {"dtype": "F7", "shape": [1], "data_offsets": [0, 1]}}).encode()
    p = tmp_path / "dtype.safetensors"
    p.write_bytes(struct.pack("<Q", len(header)) + header + b"\0")
    with pytest.raises(LoraFileError, match="unknown dtype 'F7'"):
        read_header(p)


def test_verify_finds_nan_unpaired_and_wrong_dtype(tmp_path):
    p = make_lora(tmp_path / "v.safetensors", conv=False)
    assert L.verify(p).ok and L.verify(p).family == "sd15"
    t = {k: v for k, v in _load(p).items()}
    t["lora_te_text_model_encoder_layers_0_mlp_fc1.lora_up.weight"][0, 0] = np.inf
    t["lora_unet_extra.lora_down.weight"] = np.zeros((8, 4), np.float32)
    t["lora_unet_ints.alpha"] = np.array(3, np.int32)
    save_file(t, str(tmp_path / "v2.safetensors"))
    r = L.verify(tmp_path / "v2.safetensors")
    assert not r.ok
    text = " ".join(r.problems)
    assert "has no matching up weight" in text and "I32" in text
    assert L.verify(tmp_path / "v2.safetensors", scan_values=True).problems


def _load(p):
    with safe_open(str(p), "np") as f:
        return {k: f.get_tensor(k).copy() for k in f.keys()}


# -- resize -------------------------------------------------------------------------------------------

def test_resize_equals_a_direct_reconstruction(tmp_path):
    src = make_lora(tmp_path / "src.safetensors", rank=8, alpha=4.0)
    rep = L.resize(src, tmp_path / "r3.safetensors", rank=3, conv_rank=2, save_precision="float")
    with safe_open(str(src), "np") as a, safe_open(str(tmp_path / "r3.safetensors"), "np") as b:
        for block, (d, u, al) in module_pairs(list(a.keys())).items():
            w = delta(a, block, d, u, al)
            U, S, Vh = np.linalg.svd(w, full_matrices=False)               # the slow, obvious way
            k = 2 if b.get_tensor(d).ndim == 4 else 3
            best = (U[:, :k] * S[:k]) @ Vh[:k]
            got = delta(b, block, d, u, al)
            assert np.abs(got - best).max() <= 1e-5 * np.abs(w).max()
            # the error is exactly the discarded singular values (Eckart-Young)
            assert np.linalg.norm(w - got) == pytest.approx(np.sqrt((S[k:] ** 2).sum()), rel=1e-4)
            assert b.get_tensor(d).shape[0] == k and float(b.get_tensor(al)) == pytest.approx(4.0 / 8 * k)
    layer = next(x for x in rep.layers if "conv1" in x.name)
    assert (layer.old_rank, layer.new_rank) == (8, 2) and 0 < layer.fro_retained < 1


def test_dynamic_rank_choice_follows_kohya():
    s = [10.0, 5.0, 1.0, 0.1]
    assert choose_rank(s, 320, 64, "sv_ratio", 4) == 3             # two values above 10/4, then kohya adds 1
    assert choose_rank(s, 320, 64, "sv_fro", 0.99) == 3
    assert choose_rank(s, 320, 64, "sv_cumulative", 0.9) == 3
    assert choose_rank(s, 320, 2, "sv_fro", 0.999) == 2            # capped at the given maximum
    assert choose_rank([1e-9, 0, 0], 320, 8, None, None) == 1       # an all-zero layer


@needs_fixtures
@pytest.mark.parametrize("name, kwargs", [("demo_rank2", dict(rank=2)),
                                          ("demo_svfro09", dict(rank=4, method="sv_fro", param=0.9))])
def test_resize_matches_kohyas_output(tmp_path, name, kwargs):
    """../shared/fixtures/kohya/loras/<name> was written by kohya's networks/resize_lora.py (111 s on 2 cores)."""
    rep = L.resize(FIX / "demo.safetensors", tmp_path / "mine.safetensors", save_precision="fp16", **kwargs)
    assert rep.seconds < 111 / 20, rep.seconds                       # at least 20x faster than kohya's script
    with safe_open(str(tmp_path / "mine.safetensors"), "np") as a, safe_open(str(FIX / f"{name}.safetensors"), "np") as b:
        assert set(a.keys()) == set(b.keys())
        pairs = module_pairs(list(b.keys()))
        for block, (d, u, al) in pairs.items():
            assert a.get_tensor(d).shape == b.get_tensor(d).shape and a.get_tensor(d).dtype == b.get_tensor(d).dtype
            assert float(a.get_tensor(al)) == float(b.get_tensor(al))
            assert rel_fro_difference(a, b, d, u, al) <= 2e-3, block      # fp16 rounding of the factors
        ma, mb = a.metadata(), b.metadata()
        for key in ("ss_network_dim", "ss_network_alpha", "ss_training_comment"):
            assert ma[key] == mb[key]


def test_resize_refuses_bad_requests(tmp_path):
    src = make_lora(tmp_path / "s.safetensors")
    with pytest.raises(ConfigError, match="not a resize method"):
        L.resize(src, tmp_path / "o.safetensors", method="svd")
    with pytest.raises(ConfigError, match="needs a param"):
        L.resize(src, tmp_path / "o.safetensors", method="sv_fro")
    with pytest.raises(ConfigError, match="cannot replace its source"):
        L.resize(src, src, rank=2, overwrite=True)
    (tmp_path / "exists.safetensors").write_bytes(b"x")
    with pytest.raises(ConfigError, match="already exists"):
        L.resize(src, tmp_path / "exists.safetensors", rank=2)
    tucker = _load(src)
    tucker["lora_unet_down_blocks_0_resnets_0_conv1.lora_mid.weight"] = np.zeros((8, 8, 3, 3), np.float32)
    save_file(tucker, str(tmp_path / "tucker.safetensors"))
    assert L.lora_info(tmp_path / "tucker.safetensors").network == "lycoris"
    with pytest.raises(LoraFileError, match="LyCORIS/DoRA weights"):
        L.resize(tmp_path / "tucker.safetensors", tmp_path / "o.safetensors")
    save_file({"model.diffusion_model.x.weight": np.zeros((2, 2), np.float32)}, str(tmp_path / "ckpt.safetensors"))
    with pytest.raises(LoraFileError, match="has no LoRA modules"):
        L.resize(tmp_path / "ckpt.safetensors", tmp_path / "o.safetensors")
    assert not (tmp_path / "o.safetensors").exists() and not list(tmp_path.glob(".*.tmp"))


def test_resize_job_and_list(ws, tmp_path):
    run_out = ws.runs_dir / "20260101-000000-abcd" / "output"
    run_out.mkdir(parents=True)
    src = make_lora(run_out / "alice.safetensors")
    job = L.resize_job(ws, src, rank=4)
    assert job.wait(120) is JobStatus.SUCCEEDED, job.error
    out = ws.root / "loras" / "alice-r4.safetensors"
    assert out.is_file() and [a["path"] for a in job.artifacts] == [str(out)]
    assert "fro retained" in " ".join(job.log_tail(10)) or "Frobenius" in " ".join(job.log_tail(10))
    names = [i.path.name for i in L.list_loras(ws)]
    assert set(names) == {"alice.safetensors", "alice-r4.safetensors"}


def test_cli(ws, tmp_path):
    src = make_lora(tmp_path / "c.safetensors")
    run = lambda *a: subprocess.run([sys.executable, "-m", "lora_nb.cli", "-w", str(ws.root), "lora", *a], capture_output=True, text=True)
    out = run("info", str(src), "--json")
    assert json.loads(out.stdout)["rank"] == 8
    out = run("resize", str(src), "--rank", "2", "--out", str(tmp_path / "c2.safetensors"))
    assert out.returncode == 0 and "rank 2" in out.stdout
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x01")
    out = run("verify", str(bad))
    assert out.returncode != 0 and "too short" in out.stderr and "Traceback" not in out.stderr


# -- publish ------------------------------------------------------------------------------------------

def test_publish_to_a_local_hub(ws, tmp_path, monkeypatch):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from fake_hub_api import FakeHubAPI

    src = make_lora(tmp_path / "alice.safetensors")
    sample = tmp_path / "s1.png"
    sample.write_bytes(b"\x89PNG fake")
    with FakeHubAPI() as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        monkeypatch.setenv("HF_TOKEN", hub.token)
        job = L.publish(src, "me/alice-lora", ws=ws, samples=[sample])
        assert job.wait(120) is JobStatus.SUCCEEDED, (job.error, job.log_tail(20))
        files = hub.repos["me/alice-lora"]["files"]
        assert files["alice.safetensors"] == src.read_bytes() and files["samples/s1.png"] == sample.read_bytes()
        card = files["README.md"].decode()
        assert "base_model: stable-diffusion-v1-5/stable-diffusion-v1-5" in card and "`alice`" in card and "![s1.png](samples/s1.png)" in card
        assert hub.repos["me/alice-lora"]["private"] is True
    # the token never reached the logs, the job record or the run folder
    for p in job.run_dir.rglob("*"):
        if p.is_file():
            assert hub.token.encode() not in p.read_bytes(), p
    assert hub.token not in json.dumps(job.describe())
    assert hub.token.encode() not in (ws.root / "lora_nb.db").read_bytes()


def test_publish_refusals(ws, tmp_path, monkeypatch):
    src = make_lora(tmp_path / "a.safetensors")
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "nohf"))
    with pytest.raises(SecretError, match="No Hugging Face token"):
        L.publish(src, "me/x", ws=ws)
    monkeypatch.setenv("HF_TOKEN", "hf_abcdefghijklmnopqrstuvwxyz012345")
    with pytest.raises(ConfigError, match="not a Hub repository id"):
        L.publish(src, "../evil", ws=ws)
    assert ws.jobs.list() == []


def test_publish_with_a_refused_token_fails_with_the_fix(ws, tmp_path, monkeypatch):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from fake_hub_api import FakeHubAPI

    src = make_lora(tmp_path / "a.safetensors")
    with FakeHubAPI() as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        monkeypatch.setenv("HF_TOKEN", "hf_wrongtoken_0123456789abcdefghij")
        job = L.publish(src, "me/x", ws=ws)
        assert job.wait(120) is JobStatus.FAILED
        assert "token was refused" in " ".join(job.hints)


# -- the per-layer report against kohya's --verbose output, and the factor SVD paths ----------------

_LINE = r"(\S+)\s+\| sum\(S\) retained: ([\d.]+)%, fro retained: ([\d.]+)%, max\(S\) ratio: ([\d.]+)(?:, dynamic \| dim: (\d+), alpha: ([\d.]+))?"


@needs_fixtures
@pytest.mark.parametrize("capture, kwargs", [("resize_rank2", dict(rank=2)),
                                             ("resize_svfro", dict(rank=4, method="sv_fro", param=0.9))])
def test_layer_report_matches_kohyas_verbose_output(tmp_path, capture, kwargs):
    """kohya printed one line per module (captures/<capture>.stdout, real run of networks/resize_lora.py --verbose)."""
    import re

    text = (FIX.parent / "captures" / f"{capture}.stdout").read_text()
    theirs = {m.group(1): m.groups()[1:] for m in re.finditer(_LINE, text)}
    rep = L.resize(FIX / "demo.safetensors", tmp_path / "o.safetensors", **kwargs)
    assert len(theirs) == len(rep.layers) == 264
    for layer in rep.layers:
        suffix = f", dynamic | dim: {layer.new_rank}, alpha: {layer.new_alpha}" if rep.method else ""
        mine = re.fullmatch(_LINE, (layer.line() + suffix).strip()).groups()[1:]
        want = theirs[layer.name]
        assert mine[1:] == want[1:], layer.name        # Frobenius retention, max ratio, dynamic rank and alpha: identical
        # sum(S): kohya's full float32 SVD adds hundreds of rounding-noise singular values to the total;
        # lora-nb's total is the exact one, so the printed share may differ by one step of 0.1%
        assert abs(float(mine[0]) - float(want[0])) <= 0.1 + 1e-9, layer.name


def _factors(rng, out, r, n, deficient=False):
    up, down = rng.normal(size=(out, r)), rng.normal(size=(r, n))
    if deficient:
        up[:, -1] = up[:, 0]                       # rank r - 1: Cholesky path refuses, QR fallback runs
    return up, down


@pytest.mark.parametrize("deficient", [False, True])
def test_factor_svd_is_exact_in_numpy_and_torch(deficient):
    import torch

    from lora_nb.lora.rank_resize import svd_of_product

    rng = np.random.default_rng(3)
    up, down = _factors(rng, 300, 12, 200, deficient)
    w = up @ down
    s_ref = np.linalg.svd(w, compute_uv=False)[:12]
    for xp, (u_in, d_in) in ((np, (up, down)), (torch, (torch.from_numpy(up), torch.from_numpy(down)))):
        U, S, Vh = svd_of_product(u_in, d_in, xp, keep=lambda s: 5)
        U, S, Vh = (np.asarray(x) for x in (U, S, Vh))
        assert U.shape == (300, 5) and Vh.shape == (5, 200) and S.shape == (12,)
        assert np.allclose(S, s_ref, rtol=1e-9, atol=1e-9 * s_ref[0])
        assert np.allclose(U.T @ U, np.eye(5), atol=1e-9) and np.allclose(Vh @ Vh.T, np.eye(5), atol=1e-9)
        best = (U * S[:5]) @ Vh                     # the rank-5 truncation: the error is the discarded values
        assert np.linalg.norm(w - best) == pytest.approx(np.sqrt((s_ref[5:] ** 2).sum()), rel=1e-9)


def test_bf16_lora_resizes_to_bf16_and_verify_scans_bf16(tmp_path):
    """ai-toolkit writes bf16 LoRAs (PEFT names); numpy cannot hold bf16, lora-nb reads and writes its bits."""
    import torch
    from safetensors.torch import load_file, save_file as save_torch

    rng = np.random.default_rng(5)
    t = {"transformer.single_transformer_blocks.0.attn.to_q.lora_A.weight": rng.normal(0, 0.1, (8, 96)),
         "transformer.single_transformer_blocks.0.attn.to_q.lora_B.weight": rng.normal(0, 0.1, (64, 8))}
    src = tmp_path / "flux.safetensors"
    save_torch({k: torch.from_numpy(v).to(torch.bfloat16) for k, v in t.items()}, str(src))
    info = L.lora_info(src)
    assert (info.network, info.family, info.dtype, info.rank) == ("peft", "flux", "BF16", 8)
    assert L.verify(src).ok
    rep = L.resize(src, tmp_path / "r3.safetensors", rank=3, save_precision="bf16")
    assert rep.layers[0].new_rank == 3
    got = load_file(str(tmp_path / "r3.safetensors"))             # torch reads what lora-nb wrote
    a, b = (got[f"transformer.single_transformer_blocks.0.attn.to_q.lora_{x}.weight"] for x in "AB")
    assert a.dtype == b.dtype == torch.bfloat16 and a.shape == (3, 96) and b.shape == (64, 3)
    w = torch.from_numpy(t["transformer.single_transformer_blocks.0.attn.to_q.lora_B.weight"]).to(torch.bfloat16).double() @ \
        torch.from_numpy(t["transformer.single_transformer_blocks.0.attn.to_q.lora_A.weight"]).to(torch.bfloat16).double()
    U, S, Vh = torch.linalg.svd(w)
    best = (U[:, :3] * S[:3]) @ Vh[:3]
    # no alpha in the source means a scale of 1 (kohya's rule): the new alpha is the new rank
    assert float(got["transformer.single_transformer_blocks.0.attn.to_q.alpha"].float()) == 3.0
    assert float((b.double() @ a.double() - best).abs().max()) <= 2e-2 * float(best.abs().max())
    # a NaN and an inf in a bf16 tensor are found from the raw bits
    bad = {k: torch.from_numpy(v).to(torch.bfloat16) for k, v in t.items()}
    bad["transformer.single_transformer_blocks.0.attn.to_q.lora_B.weight"][0, :3] = torch.tensor([float("nan"), float("inf"), -float("inf")])
    save_torch(bad, str(tmp_path / "bad.safetensors"))
    problems = " ".join(L.verify(tmp_path / "bad.safetensors").problems)
    assert "has 1 NaN values" in problems and "has 2 infinite values" in problems
