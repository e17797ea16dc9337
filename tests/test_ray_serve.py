"""`reelsense serve --ray` for real: the CLI deploys on a local Ray Serve (the real models in two analyzer
replicas), and the tests talk HTTP to Serve's proxy on a loopback port; SIGINT takes it down cleanly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest

from pipeline.progress import STAGE_START
from service.ray_serve import gpus_per_replica
from service.settings import Settings
from tests import media_factory as mf
from tests.labelled_clips import CLIPS, make_clip, read_mono
from tests.service_helpers import free_port, poll_job, wait_until


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("ray-serve")


PORT_ATTEMPTS = 3  # free_port() releases the port before Serve binds it: another process may take it
REPLICAS = 2


def _start(work: Path, env: dict[str, str]) -> tuple[subprocess.Popen[str], httpx.Client]:
    """`serve --ray` on a free loopback port, ready; a start that loses its port is retried on another."""
    command = [sys.executable, "-m", "scripts.cli", "serve", "--ray", "--replicas", str(REPLICAS)]
    command += ["--host", "127.0.0.1"]
    outputs = []
    for _ in range(PORT_ATTEMPTS):
        port = free_port()
        process = subprocess.Popen(
            [*command, "--port", str(port)],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=work,
        )  # fmt: skip
        client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=900)

        def ready(process: subprocess.Popen[str] = process, client: httpx.Client = client) -> bool:
            if process.poll() is not None:
                return True  # ended: not ready, told apart below
            try:
                return client.get("/readyz").status_code == 200
            except httpx.TransportError:
                return False

        wait_until(ready, 300)
        if process.poll() is None:
            return process, client
        client.close()
        outputs.append(process.stdout.read() if process.stdout else "")
        if "address already in use" not in outputs[-1].lower():
            break  # failed for another reason: no point in another port
    raise AssertionError("serve --ray did not start:\n" + "\n---\n".join(outputs))


def test_a_replica_that_cannot_load_fails_the_deployment_and_says_why(work: Path) -> None:
    """First in the module: it runs before the shared server's local Ray exists."""
    missing = work / "no-such-vision-model"
    env = {
        **os.environ,
        "REELSENSE_JOBS_DB": str(work / "failed-jobs.sqlite3"),
        "REELSENSE_VISION_MODEL": f"local:{missing}",
        "REELSENSE_DEVICE": "cpu",
        "REELSENSE_RAY_CPUS_PER_REPLICA": "0.5",
    }
    env.pop("RAY_ADDRESS", None)
    command = [sys.executable, "-m", "scripts.cli", "serve", "--ray", "--replicas", "1"]
    command += ["--host", "127.0.0.1", "--port", str(free_port())]  # never bound: no port race to lose
    done = subprocess.run(command, env=env, capture_output=True, text=True, cwd=work, timeout=600)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "the Ray Serve deployment failed" in done.stderr, done.stderr
    assert str(missing) in done.stderr, done.stderr  # the replica's own reason reaches the operator
    assert "serving on" not in done.stdout


HEAD_LABELS = ("coffee", "cars")


def _save_head(heads: Path) -> None:
    """A head for the default encoders, as `reelsense finetune` would save one, but untrained (its answer is
    the zero-shot prior's over its own labels): what matters here is that a replica finds and uses it."""
    from models.checkpoint import save_head
    from models.fusion import FusionConfig
    from models.specs import DEFAULT_SPEECH_SPEC, DEFAULT_TEXT_SPEC, DEFAULT_VISION_SPEC
    from models.training import fresh_head

    # EfficientNet-Lite0's pooled features, Whisper base's encoder width, USE's sentence vectors.
    config = FusionConfig(vision_dim=1280, audio_dim=512, text_dim=512, label_dim=512)
    specs = {"vision": DEFAULT_VISION_SPEC, "audio": DEFAULT_SPEECH_SPEC, "text": DEFAULT_TEXT_SPEC}
    save_head(
        heads / "mine", fresh_head(config, 0), config, HEAD_LABELS, {**specs, "label": DEFAULT_TEXT_SPEC}
    )


@pytest.fixture(scope="module")
def server(work: Path) -> Iterator[httpx.Client]:
    _save_head(work / "heads")
    env = {
        **os.environ,
        "REELSENSE_HEADS_DIR": str(work / "heads"),
        "REELSENSE_JOBS_DB": str(work / "jobs.sqlite3"),
        "REELSENSE_UPLOAD_DIR": str(work / "uploads"),
        "REELSENSE_FRAMES": "8",
        "REELSENSE_DEVICE": "cpu",
        "REELSENSE_RAY_CPUS_PER_REPLICA": "0.5",
        # Two running + 5 waiting: a burst gets 429s only if requests reach the app instead of waiting in
        # the proxy (Serve's default lets 5 into a replica at once).
        "REELSENSE_QUEUE_SIZE": "5",
        # The burst's last queued request waits for five analyses: far from any timeout on a busy machine.
        "REELSENSE_SYNC_TIMEOUT_S": "900",
    }
    env.pop("RAY_ADDRESS", None)  # a local Ray, started and stopped by the command
    process, client = _start(work, env)
    try:
        yield client
    finally:
        client.close()
        process.send_signal(signal.SIGINT)
        try:
            code = process.wait(timeout=120)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
        output = process.stdout.read() if process.stdout else ""
        assert code == 0, output  # a clean shutdown: the app removed and Ray stopped


@pytest.fixture(scope="module")
def clip(work: Path) -> Path:
    return make_clip(next(c for c in CLIPS if c.name == "espresso"), work)


def test_sync_analyze_through_serve(server: httpx.Client, clip: Path, work: Path) -> None:
    response = server.post("/v1/analyze", files={"file": ("clip.mp4", clip.read_bytes(), "video/mp4")})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ok" and body["source"] == "upload:clip.mp4"  # the replica's path is hidden
    assert body["category"]["label"] == "food & cooking"
    assert body["sentiment"]["label"] == "positive" and "espresso" in body["transcript"]["text"].lower()
    assert list((work / "uploads").iterdir()) == []  # the ingress removed the upload


def test_a_fine_tuned_head_answers_through_serve(server: httpx.Client, clip: Path) -> None:
    files = {"file": ("clip.mp4", clip.read_bytes(), "video/mp4")}
    response = server.post("/v1/analyze", files=files, data={"head": "mine"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model"]["head"] == "mine"  # loaded on the replica from HEADS_DIR
    assert set(body["category"]["scores"]) == set(HEAD_LABELS)  # the head's own labels, not the taxonomy
    assert body["category"]["label"] == "coffee"
    unknown = server.post("/v1/analyze", files=files, data={"head": "nobody"})
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "head_not_found"


def test_jobs_stream_their_stages_from_the_replica(server: httpx.Client, clip: Path) -> None:
    files = {"file": ("clip.mp4", clip.read_bytes(), "video/mp4")}
    job_id = server.post("/v1/jobs", files=files, data={"labels": "coffee, cars"}).json()["id"]
    seen: list[tuple[str, float]] = []

    def finished() -> bool:
        job = server.get(f"/v1/jobs/{job_id}").json()
        seen.append((job["stage"], job["progress"]))
        return job["status"] in {"succeeded", "failed"}

    wait_until(finished, 120)
    job = poll_job(server, job_id, {"succeeded"})
    assert job["result"]["category"]["label"] == "coffee"
    assert any(stage in STAGE_START for stage, _ in seen), seen  # progress crossed the replica boundary
    fractions = [fraction for _, fraction in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0


def test_bad_upload_fails_that_request_only(server: httpx.Client, clip: Path) -> None:
    bad = server.post("/v1/analyze", files={"file": ("clip.mp4", b"not a video" * 50, "video/mp4")})
    assert bad.status_code == 415 and bad.json()["error"]["code"] == "invalid_media", bad.text
    assert "Traceback" not in bad.text and "reelsense-replica" not in bad.text
    good = server.post("/v1/analyze", files={"file": ("clip.mp4", clip.read_bytes(), "video/mp4")})
    assert good.status_code == 200


def test_a_burst_gets_429s_from_the_app_not_a_hidden_queue(server: httpx.Client, clip: Path) -> None:
    files = {"file": ("clip.mp4", clip.read_bytes(), "video/mp4")}
    with ThreadPoolExecutor(max_workers=10) as pool:
        answers = list(pool.map(lambda _: server.post("/v1/analyze", files=files), range(10)))
    statuses = sorted(answer.status_code for answer in answers)
    assert set(statuses) <= {200, 429}, statuses
    # What the app controls: it refuses only when 2 are running and 5 wait, so at least 7 are answered,
    # however the 10 arrive. A 429 at all needs 8 uploads (milliseconds each) to arrive within one
    # analysis (seconds): a margin of about a hundred, not a race on the clock.
    assert statuses.count(200) >= REPLICAS + 5 and statuses.count(429) >= 1, statuses
    assert all(a.headers.get("retry-after") for a in answers if a.status_code == 429)


def _long_talk(folder: Path) -> Path:
    """About seven minutes of speech over a still picture at 1 fps: quick to make (~30 s), and its analysis
    takes over ten times as long as the espresso clip's on any machine, loaded or not (both Whisper-bound):
    minutes of margin over a cancel's latency (up to two Whisper windows) plus the espresso analysis."""
    lecture = next(c for c in CLIPS if c.name == "lecture")
    speech = read_mono(mf.speech_wav(folder / "long_talk.wav", " ".join([lecture.speech] * 60)))
    still = np.full((240, 320, 3), 128, np.uint8)
    path = folder / "long_talk.mp4"
    mf.write_frames_video(path, [still] * (speech.size // 22_050 + 1), fps=1, audio=speech)
    return path


def _running_in_a_replica(server: httpx.Client, job_id: str) -> None:
    """Past probe means a replica is analysing it (stages are reported from inside the replica)."""
    poll_job(server, job_id, {"running"}, 120)
    wait_until(lambda: server.get(f"/v1/jobs/{job_id}").json()["progress"] >= STAGE_START["probe"], 120)


def test_a_cancelled_job_frees_its_replica_while_the_other_is_busy(
    server: httpx.Client, clip: Path, work: Path
) -> None:
    """Two long jobs hold both replicas; the later one is cancelled; a short job must then succeed while
    the earlier long one still runs. That needs the cancel to stop the analysis inside its replica: left
    running, it would end after the earlier job (the same work, started later), and the short job could
    only start then. With one replica the second long job never gets past probe. Last of the server's
    tests: the first long job is cancelled at the end."""
    upload = {"file": ("talk.mp4", _long_talk(work).read_bytes(), "video/mp4")}
    first = server.post("/v1/jobs", files=upload).json()["id"]
    _running_in_a_replica(server, first)
    second = server.post("/v1/jobs", files=upload).json()["id"]
    _running_in_a_replica(server, second)
    assert server.delete(f"/v1/jobs/{second}").status_code == 200
    short = {"file": ("clip.mp4", clip.read_bytes(), "video/mp4")}
    short_id = server.post("/v1/jobs", files=short).json()["id"]
    answer = poll_job(server, short_id, {"succeeded", "failed"}, 300)
    assert server.get(f"/v1/jobs/{first}").json()["status"] == "running"
    assert answer["status"] == "succeeded" and answer["result"]["category"]["label"] == "food & cooking"
    assert server.delete(f"/v1/jobs/{first}").status_code == 200


def test_gpus_per_replica() -> None:
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert gpus_per_replica(settings, cluster_gpus=0) == 0
    assert gpus_per_replica(settings, cluster_gpus=8) == 1
    assert gpus_per_replica(settings.model_copy(update={"device": "cpu"}), cluster_gpus=8) == 0
    assert (
        gpus_per_replica(settings.model_copy(update={"ray_gpus_per_replica": 0.25}), cluster_gpus=8) == 0.25
    )
