"""`lora-nb jobs ...` as a user types it, in a real subprocess (stand-in engine, not a real trainer)."""
import json
import subprocess
import sys

from support import STANDIN


def lora_nb(ws, *args, check=True):
    return subprocess.run([sys.executable, "-m", "lora_nb.cli", "-w", str(ws.root), *args], capture_output=True, text=True, check=check)


def test_submit_wait_list_show_logs(ws):
    out = lora_nb(ws, "jobs", "submit", "--name", "cli-run", "--wait", "--", sys.executable, STANDIN, "--steps", "4", "--delay", "0")
    job_id, status = out.stdout.split()
    assert status == "succeeded"
    listing = lora_nb(ws, "jobs", "list").stdout
    assert job_id in listing and "succeeded" in listing and "4/4" in listing and "cli-run" in listing
    shown = json.loads(lora_nb(ws, "jobs", "show", job_id, "--json").stdout)
    assert shown["status"] == "succeeded" and shown["progress"]["step"] == 4
    logs = lora_nb(ws, "jobs", "logs", job_id, "-n", "2").stdout.splitlines()
    assert logs[-1] == "model saved."
    followed = lora_nb(ws, "jobs", "logs", "-f", job_id)
    assert followed.returncode == 0 and f"[{job_id} succeeded]" in followed.stdout


def test_failed_job_exit_status_and_summary(ws):
    out = lora_nb(ws, "jobs", "submit", "--wait", "--", sys.executable, STANDIN, "--oom", check=False)
    assert out.returncode == 1
    job_id = out.stdout.split()[0]
    shown = lora_nb(ws, "jobs", "show", job_id).stdout
    assert "The job failed: exit code 1." in shown and "CUDA out of memory" in shown


def test_stop_from_the_cli(ws):
    job_id = lora_nb(ws, "jobs", "submit", "--", sys.executable, STANDIN, "--steps", "100000", "--delay", "0.05").stdout.strip()
    out = lora_nb(ws, "jobs", "stop", "--grace", "1", job_id)
    assert out.stdout.split() == [job_id, "stopped"]


def test_errors_are_one_line_without_traceback(ws):
    out = lora_nb(ws, "jobs", "show", "nope", check=False)
    assert out.returncode == 1
    assert out.stderr.strip() == "lora-nb: There is no job 'nope'. List jobs with ws.jobs.list() or `lora-nb jobs list`."
    out = lora_nb(ws, "jobs", "submit", "--", "/no/such/program", check=False)
    assert out.returncode == 1 and "does not exist" in out.stderr and "Traceback" not in out.stderr


def test_submit_with_a_parser_by_name(ws, tmp_path):
    out = lora_nb(ws, "jobs", "submit", "--parser", "nope", "--", sys.executable, "-c", "pass", check=False)
    assert out.returncode == 2 and "invalid choice: 'nope'" in out.stderr and "hf-trainer" in out.stderr
    assert ws.jobs.list() == []
    help_text = lora_nb(ws, "jobs", "submit", "--help").stdout
    assert "aitoolkit, hf-trainer, kohya, plain, task" in " ".join(help_text.split())
    script = tmp_path / "hf.py"
    script.write_text("import sys\n"
                      "for s in range(1, 11):\n"
                      "    sys.stderr.write(f'\\r{s * 10:3d}%|#         | {s}/10 [00:01<00:01,  9.00it/s]')\n"
                      "    if s % 5 == 0:\n"
                      "        sys.stderr.write(f\"\\r{' ' * 30}\\r{{'loss': {1.0 / s}, 'learning_rate': 5e-05, 'epoch': {s / 10}}}\\n\")\n"
                      "        sys.stderr.write(f'\\r{s * 10:3d}%|#         | {s}/10 [00:01<00:01,  9.00it/s]')\n")
    out = lora_nb(ws, "jobs", "submit", "--parser", "hf-trainer", "--no-gpu", "--wait", "--", sys.executable, str(script))
    job_id = out.stdout.split()[0]
    shown = json.loads(lora_nb(ws, "jobs", "show", job_id, "--json").stdout)
    assert shown["progress"]["step"] == 10 and shown["progress"]["loss"] == 0.1 and shown["progress"]["lr"] == 5e-05
