// The reelsense web page: a client of the public API (POST /v1/jobs, GET /v1/jobs/{id}), nothing more.
// Plain DOM code on purpose: no build step, no dependency, and every value from the API is written with
// textContent (never innerHTML), so a label or a transcript cannot inject markup.
"use strict";

(() => {
  const KEY_STORAGE = "reelsense.apiKey";
  const POLL_MS = 400; // a short clip finishes in seconds: poll often enough to see its stages
  const TOP_LABELS = 5;
  const FINAL = new Set(["succeeded", "failed", "cancelled"]);
  const UNREACHABLE = "Cannot reach the service (is it still running?).";
  const MODALITY_NAMES = {
    text: "Speech (what is said)",
    audio: "Voice (tone)",
    prior: "Text and tone combined",
    vision: "Picture",
  };

  const $ = (id) => document.getElementById(id);
  const state = { file: null, objectUrl: null, jobId: null, timer: null, stageSeen: null, started: 0 };

  // ---- API -------------------------------------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, code, message) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }

  // Session storage: the key stays with this tab (entered once per visit), never in a URL or a cookie.
  function apiKey() {
    try {
      return sessionStorage.getItem(KEY_STORAGE) || "";
    } catch (_) {
      return ""; // storage disabled: no key
    }
  }

  function authHeaders() {
    const key = apiKey();
    return key ? { "X-API-Key": key } : {};
  }

  // The human message from the one error shape; never the raw body (a proxy's HTML, a traceback).
  function errorFrom(status, statusText, bodyText) {
    try {
      const body = JSON.parse(bodyText);
      if (body && body.error && typeof body.error.message === "string") {
        return new ApiError(status, body.error.code || "error", body.error.message);
      }
    } catch (_) {
      // not JSON: fall through to a generic message
    }
    const message = `The service answered HTTP ${status} ${statusText}`.trim() + ".";
    return new ApiError(status, "http_" + status, message);
  }

  async function api(method, path) {
    let response;
    try {
      response = await fetch(path, { method, headers: authHeaders(), cache: "no-store" });
    } catch (_) {
      throw new ApiError(0, "network", UNREACHABLE);
    }
    const text = await response.text();
    if (!response.ok) throw errorFrom(response.status, response.statusText, text);
    return JSON.parse(text);
  }

  // XMLHttpRequest rather than fetch for the upload: only it reports upload progress.
  function send(path, body, contentType, onUpload) {
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open("POST", path);
      for (const [name, value] of Object.entries(authHeaders())) xhr.setRequestHeader(name, value);
      if (contentType) xhr.setRequestHeader("Content-Type", contentType);
      xhr.upload.onprogress = (event) => {
        if (event.lengthComputable) onUpload(event.loaded / event.total);
      };
      xhr.onload = () => {
        if (xhr.status >= 200 && xhr.status < 300) resolve(JSON.parse(xhr.responseText));
        else reject(errorFrom(xhr.status, xhr.statusText, xhr.responseText));
      };
      xhr.onerror = () => reject(new ApiError(0, "network", UNREACHABLE));
      xhr.send(body);
    });
  }

  // ---- small helpers ---------------------------------------------------------------------------------

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  const percent = (p) => `${(p * 100).toFixed(1)}%`;

  function clock(seconds) {
    const s = Math.max(0, seconds);
    const h = Math.floor(s / 3600);
    const m = Math.floor((s % 3600) / 60);
    const rest = (s % 60).toFixed(1).padStart(4, "0");
    return h ? `${h}:${String(m).padStart(2, "0")}:${rest}` : `${m}:${rest}`;
  }

  // A stable light colour per category label, dark text on it (contrast well above 4.5:1).
  function labelHue(label) {
    let hash = 0;
    for (const ch of label) hash = (hash * 31 + ch.codePointAt(0)) >>> 0;
    return hash % 360;
  }

  function showError(error) {
    const box = $("error");
    box.replaceChildren(el("strong", "", "Error: "), el("span", "error-message", error.message));
    if (error.code) {
      const code = el("span", "muted", "(code ");
      code.append(el("code", "error-code", error.code), ")");
      box.append(" ", code);
    }
    box.hidden = false;
    if (error.status === 401 || error.status === 403) openKeyPanel(error.message);
  }

  function clearError() {
    $("error").hidden = true;
    $("error").replaceChildren();
  }

  // ---- service status and API key --------------------------------------------------------------------

  async function checkService() {
    const status = $("service-status");
    try {
      await api("GET", "/readyz");
      status.textContent = "Service ready.";
      status.dataset.state = "ready";
    } catch (error) {
      status.textContent = error.code === "not_ready" ? "Models are loading…" : error.message;
      status.dataset.state = error.code === "not_ready" ? "loading" : "error";
      if (error.code === "not_ready" || error.status === 0) setTimeout(checkService, 2000);
      return;
    }
    try {
      await api("GET", "/v1/jobs?limit=1"); // does this service want a key, and is ours good?
    } catch (error) {
      if (error.status === 401 || error.status === 403) openKeyPanel(error.message);
    }
  }

  function openKeyPanel(message) {
    $("key-panel").open = true;
    $("key-status").textContent = message;
    $("key-status").classList.add("warning");
  }

  function showKey() {
    $("key-summary").textContent = apiKey() ? "(set)" : "(none)";
  }

  function saveKey() {
    const key = $("api-key").value.trim();
    if (!key) {
      $("key-status").textContent = "Type a key first.";
      return;
    }
    sessionStorage.setItem(KEY_STORAGE, key);
    $("api-key").value = "";
    $("key-status").textContent = "Key saved for this tab.";
    $("key-status").classList.remove("warning");
    showKey();
    clearError();
  }

  function forgetKey() {
    sessionStorage.removeItem(KEY_STORAGE);
    $("key-status").textContent = "Key forgotten.";
    showKey();
  }

  // ---- choosing the input ----------------------------------------------------------------------------

  function chooseFile(file) {
    if (!file) return;
    state.file = file;
    $("url").value = ""; // one source at a time: the latest choice wins
    const mb = (file.size / (1024 * 1024)).toFixed(1);
    $("file-name").textContent = `${file.name} (${mb} MB)`;
    clearError();
  }

  function wireDropZone() {
    const zone = $("drop-zone");
    $("file").addEventListener("change", () => chooseFile($("file").files[0]));
    zone.addEventListener("dragover", (event) => {
      event.preventDefault();
      zone.classList.add("dragging");
    });
    zone.addEventListener("dragleave", () => zone.classList.remove("dragging"));
    zone.addEventListener("drop", (event) => {
      event.preventDefault();
      zone.classList.remove("dragging");
      chooseFile(event.dataTransfer.files[0]);
    });
    // A file dropped beside the zone would otherwise replace the page with the video.
    for (const name of ["dragover", "drop"]) {
      document.addEventListener(name, (event) => event.preventDefault());
    }
    $("url").addEventListener("input", () => {
      if ($("url").value.trim()) {
        state.file = null;
        $("file").value = "";
        $("file-name").textContent = "No file chosen";
      }
    });
  }

  function labelList() {
    return $("labels").value.split(",").map((s) => s.trim()).filter(Boolean);
  }

  // ---- a job: create, poll ---------------------------------------------------------------------------

  async function submit(event) {
    event.preventDefault();
    clearError();
    const url = $("url").value.trim();
    if (!state.file && !url) {
      showError(new ApiError(0, "", "Choose a video file or paste its URL first."));
      return;
    }
    stopPolling();
    resetProgress();
    $("analyse").disabled = true;
    preparePlayer(url ? null : state.file);
    try {
      let created;
      if (state.file) {
        const form = new FormData();
        form.append("file", state.file, state.file.name);
        if (labelList().length) form.append("labels", labelList().join(","));
        setProgress("uploading", "upload", 0);
        created = await send("/v1/jobs", form, null, (done) => setProgress("uploading", "upload", done));
      } else {
        const body = { url };
        if (labelList().length) body.labels = labelList();
        created = await send("/v1/jobs", JSON.stringify(body), "application/json", () => {});
      }
      state.jobId = created.id;
      $("job-id").textContent = created.id;
      $("cancel").hidden = false;
      poll();
    } catch (error) {
      finish();
      $("progress").hidden = true;
      showError(error);
    }
  }

  async function poll() {
    const jobId = state.jobId;
    let job;
    try {
      job = await api("GET", `/v1/jobs/${encodeURIComponent(jobId)}`);
    } catch (error) {
      finish();
      showError(error);
      return;
    }
    if (jobId !== state.jobId) return; // a newer job replaced this one meanwhile
    setProgress(job.status, job.stage, job.progress);
    if (!FINAL.has(job.status)) {
      state.timer = setTimeout(poll, POLL_MS);
      return;
    }
    finish();
    if (job.status === "succeeded") renderResult(job);
    else showError(new ApiError(0, (job.error && job.error.code) || job.status, jobMessage(job)));
  }

  function jobMessage(job) {
    if (job.error && job.error.message) return job.error.message;
    return job.status === "cancelled" ? "The job was cancelled." : "The job failed.";
  }

  function stopPolling() {
    clearTimeout(state.timer);
    state.timer = null;
    state.jobId = null;
  }

  function finish() {
    clearTimeout(state.timer);
    state.timer = null;
    $("analyse").disabled = false;
    $("cancel").hidden = true;
  }

  async function cancel() {
    if (!state.jobId) return;
    try {
      await api("DELETE", `/v1/jobs/${encodeURIComponent(state.jobId)}`);
    } catch (error) {
      showError(error);
    }
  }

  function resetProgress() {
    $("progress").hidden = false;
    $("result").hidden = true;
    $("job-id").textContent = "";
    $("stage-log").replaceChildren();
    state.stageSeen = null;
    state.started = performance.now();
  }

  // Shows whatever stage the API reports: the list of stages belongs to the service, not to this page.
  function setProgress(status, stage, progress) {
    const pct = Math.round(Math.min(1, Math.max(0, progress || 0)) * 100);
    $("progress-bar").value = pct;
    $("status-text").textContent = `${status} · ${stage || "…"} · ${pct}%`;
    $("progress").dataset.status = status;
    $("progress").dataset.stage = stage || "";
    if (stage && stage !== state.stageSeen) {
      state.stageSeen = stage;
      const seconds = ((performance.now() - state.started) / 1000).toFixed(1);
      const item = el("li", "", stage);
      item.append(" ", el("span", "muted", `+${seconds} s`));
      $("stage-log").append(item);
    }
  }

  // ---- the result ------------------------------------------------------------------------------------

  function preparePlayer(file) {
    const player = $("player");
    if (state.objectUrl) URL.revokeObjectURL(state.objectUrl);
    state.objectUrl = file ? URL.createObjectURL(file) : null;
    if (state.objectUrl) player.src = state.objectUrl;
    else player.removeAttribute("src");
    player.hidden = !file;
    $("no-player").hidden = Boolean(file);
  }

  function renderResult(job) {
    const result = job.result || {};
    renderCategory(result.category);
    renderSentiment(result.sentiment);
    const duration = (result.media && result.media.duration_s) || 0;
    renderTimeline(result.segments || [], duration);
    renderTranscript(result.transcript);
    renderMedia(result.media);
    $("raw-id").textContent = job.id;
    $("raw-json").textContent = JSON.stringify(job, null, 2);
    $("result").hidden = false;
    // Keyboard and screen-reader users land on the result they asked for, far below the form.
    $("result-title").focus({ preventScroll: true });
    const still = window.matchMedia("(prefers-reduced-motion: reduce)").matches;
    $("result-title").scrollIntoView({ behavior: still ? "auto" : "smooth", block: "start" });
  }

  function bar(name, probability, className) {
    const item = el("li", className);
    item.append(el("span", "bar-name", name));
    const track = el("span", "bar-track");
    const fill = el("span", "bar-fill");
    fill.style.width = percent(probability); // CSSOM, which the page's CSP allows (no inline style attrs)
    fill.dataset.value = String(probability);
    track.append(fill);
    item.append(track, el("span", "bar-value", percent(probability)));
    return item;
  }

  function renderCategory(category) {
    const list = $("top-labels");
    list.replaceChildren();
    if (!category) {
      $("category-label").textContent = "none";
      $("category-confidence").textContent = "";
      return;
    }
    $("category-label").textContent = category.label;
    $("category-confidence").textContent = percent(category.confidence);
    const top = Object.entries(category.scores || {}).sort((a, b) => b[1] - a[1]).slice(0, TOP_LABELS);
    for (const [name, p] of top) list.append(bar(name, p, "top-label"));
  }

  function renderSentiment(sentiment) {
    const box = $("modalities");
    box.replaceChildren();
    if (!sentiment) {
      $("sentiment-label").textContent = "none";
      $("sentiment-confidence").textContent = "";
      return;
    }
    $("sentiment-label").textContent = sentiment.label;
    $("sentiment-label").dataset.sentiment = sentiment.label;
    $("sentiment-confidence").textContent = percent(sentiment.confidence);
    for (const [name, scores] of Object.entries(sentiment.by_modality || {})) {
      const block = el("div", "modality");
      block.dataset.modality = name;
      block.append(el("h4", "", MODALITY_NAMES[name] || name));
      if (scores === null) {
        // null is "this modality said nothing" (e.g. no speech), which is not the same as neutral
        block.append(el("p", "muted no-signal", "no signal (nothing to read here)"));
      } else {
        const list = el("ul", "bars small");
        for (const [label, p] of Object.entries(scores)) list.append(bar(label, p, "modality-score"));
        block.append(list);
      }
      box.append(block);
    }
  }

  function seek(seconds) {
    const player = $("player");
    if (player.hidden) return;
    player.currentTime = seconds;
  }

  function timeButton(seconds, text, className) {
    const button = el("button", className, text);
    button.type = "button";
    button.dataset.start = String(seconds);
    button.addEventListener("click", () => seek(seconds));
    return button;
  }

  function renderTimeline(segments, duration) {
    const end = duration || (segments.length ? segments[segments.length - 1].end_s : 0);
    $("timeline").dataset.duration = String(end);
    $("axis-end").textContent = clock(end);
    const tracks = { category: $("track-category"), sentiment: $("track-sentiment") };
    for (const [kind, track] of Object.entries(tracks)) {
      track.replaceChildren();
      for (const segment of segments) {
        const score = segment[kind];
        const span = `${clock(segment.start_s)}–${clock(segment.end_s)}`;
        const button = timeButton(segment.start_s, score.label, `segment segment-${kind}`);
        button.setAttribute("aria-label", `${span}: ${score.label}, ${percent(score.confidence)}`);
        button.title = `${span}: ${score.label} (${percent(score.confidence)})`;
        button.style.width = end > 0 ? percent((segment.end_s - segment.start_s) / end) : "0%";
        if (kind === "category") button.style.setProperty("--hue", String(labelHue(score.label)));
        else button.dataset.sentiment = score.label;
        track.append(button);
      }
    }
  }

  function renderTranscript(transcript) {
    const list = $("transcript");
    list.replaceChildren();
    const segments = (transcript && transcript.segments) || [];
    if (!segments.length) {
      $("transcript-info").textContent = "No speech found.";
      return;
    }
    const hint = $("player").hidden ? "" : " · select a time to play from there";
    $("transcript-info").textContent = `Language: ${transcript.language}${hint}.`;
    for (const segment of segments) {
      const item = el("li", "transcript-segment");
      item.dataset.start = String(segment.start_s);
      item.dataset.end = String(segment.end_s);
      const button = timeButton(segment.start_s, clock(segment.start_s), "timestamp");
      button.setAttribute("aria-label", `Play from ${clock(segment.start_s)}`);
      item.append(button, el("span", "transcript-text", segment.text));
      list.append(item);
    }
  }

  function renderMedia(media) {
    if (!media) {
      $("media-info").textContent = "";
      return;
    }
    const parts = [`${media.duration_s.toFixed(1)} s`];
    if (media.width) parts.push(`${media.width}×${media.height}`, `${media.fps} fps`, media.video_codec);
    if (media.has_audio) parts.push(`${media.audio_codec} audio`);
    parts.push(media.has_speech ? "speech" : "no speech");
    $("media-info").textContent = parts.filter(Boolean).join(" · ");
  }

  // Follows the player: the playhead on the timeline and the transcript line being spoken.
  function followPlayer() {
    const player = $("player");
    const t = player.currentTime;
    const end = Number($("timeline").dataset.duration || 0);
    $("playhead").style.left = end > 0 ? percent(Math.min(1, t / end)) : "0%";
    for (const item of $("transcript").children) {
      const inside = t >= Number(item.dataset.start) && t < Number(item.dataset.end);
      if (inside) item.setAttribute("aria-current", "true");
      else item.removeAttribute("aria-current");
    }
  }

  // ---- start -----------------------------------------------------------------------------------------

  document.addEventListener("DOMContentLoaded", () => {
    wireDropZone();
    $("job-form").addEventListener("submit", submit);
    $("cancel").addEventListener("click", cancel);
    $("save-key").addEventListener("click", saveKey);
    $("forget-key").addEventListener("click", forgetKey);
    $("api-key").addEventListener("keydown", (event) => {
      if (event.key === "Enter") {
        event.preventDefault(); // Enter saves the key rather than submitting the form
        saveKey();
      }
    });
    for (const name of ["timeupdate", "seeked", "loadedmetadata"]) {
      $("player").addEventListener(name, followPlayer);
    }
    showKey();
    checkService();
  });
})();
