// emolens viewer page: consent, camera check, the ads full screen while the webcam records,
// chunked resumable upload, then the page's ad timing. Vanilla JS, nothing loaded from elsewhere.
// document.body.dataset.state says where the page is (loading, consent, camera, playing,
// uploading, done, denied, stopped, closed, error): the tests and the CSS read it.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const token = decodeURIComponent(location.pathname.split("/").filter(Boolean).pop() || "");
  const api = `/v1/watch/${encodeURIComponent(token)}`;
  const RETRY_MAX_MS = 10000;
  const STALL_WARN_MS = 30000;

  const s = {
    session: null, ads: [], stream: null, recorder: null, t0: null, timing: [], mime: "",
    queue: [], offset: 0, acked: 0, uploading: false, failingSince: null, finished: false, ended: false,
  };

  function setState(name) { document.body.dataset.state = name; }
  function show(stepId) {
    for (const el of document.querySelectorAll(".step")) el.hidden = el.id !== stepId;
    $("stage").hidden = stepId !== "stage";
  }
  function now() { return (performance.now() - s.t0) / 1000; }

  async function errorText(r) {
    try { const b = await r.json(); if (b && b.error) return b.error.message; } catch (_) { /* not JSON */ }
    return `the server answered ${r.status}`;
  }

  function end(state, title, text) {
    s.ended = true;
    setState(state);
    $("ended-title").textContent = title;
    $("ended-text").textContent = text;
    stopCamera();
    if (document.fullscreenElement) document.exitFullscreen().catch(() => {});
    show("step-ended");
  }

  function stopCamera() {
    if (s.stream) for (const t of s.stream.getTracks()) t.stop();
  }

  function abandon(reason) {
    if (!s.session || s.finished) return;
    const url = `${api}/sessions/${encodeURIComponent(s.session)}/abandon`;
    const body = JSON.stringify({ reason });
    if (!navigator.sendBeacon(url, new Blob([body], { type: "application/json" }))) {
      fetch(url, { method: "POST", body, headers: { "Content-Type": "application/json" }, keepalive: true })
        .catch(() => {});
    }
    s.finished = true;
  }

  // ---- consent ---------------------------------------------------------------------------------
  function questionField(q) {
    const wrap = document.createElement("label");
    wrap.className = "question";
    wrap.append(document.createTextNode(q.label + (q.required ? " *" : "")));
    let input;
    if (q.choices.length) {
      input = document.createElement("select");
      input.append(new Option("—", ""));
      for (const c of q.choices) input.append(new Option(c, c));
    } else {
      input = document.createElement("input");
      input.type = "text";
      input.maxLength = 200;
    }
    input.name = q.key;
    input.required = q.required;
    wrap.append(input);
    return wrap;
  }

  async function load() {
    let r;
    try { r = await fetch(api); } catch (err) {
      return end("error", "The server cannot be reached", `Check your connection and reload this page (${err.message}).`);
    }
    if (r.status === 404) return end("closed", "This link is not valid", "The study does not exist or was deleted.");
    if (r.status === 410) return end("closed", "This study has ended", "Thank you for your interest: it takes no more viewers.");
    if (!r.ok) return end("error", "Something went wrong", await errorText(r));
    const info = await r.json();
    document.title = info.name;
    $("study-name").textContent = info.name;
    $("ad-count").textContent = `${info.ads} short ad${info.ads === 1 ? "" : "s"}`;
    $("ad-time").textContent = `${Math.max(1, Math.round(info.total_duration_s))} s`;
    $("consent-recorded").textContent = info.consent.recorded;
    $("consent-purpose").textContent = info.consent.purpose;
    $("consent-rights").textContent = info.consent.rights;
    $("questions").replaceChildren(...info.questions.map(questionField));
    setState("consent");
    show("step-consent");
  }

  async function agree(e) {
    e.preventDefault();
    const answers = {};
    for (const el of $("questions").querySelectorAll("input, select")) answers[el.name] = el.value;
    $("agree-button").disabled = true;
    const r = await fetch(`${api}/sessions`, {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ answers }),
    }).catch((err) => ({ ok: false, status: 0, json: async () => ({ error: { message: err.message } }) }));
    $("agree-button").disabled = false;
    if (!r.ok) {
      $("consent-error").textContent = await errorText(r);
      $("consent-error").hidden = false;
      return;
    }
    const started = await r.json();
    s.session = started.session_id;
    s.ads = started.ads;
    s.chunkBytes = started.chunk_bytes;
    await cameraCheck();
  }

  // ---- camera check ----------------------------------------------------------------------------
  async function cameraCheck() {
    setState("camera");
    show("step-camera");
    try {
      s.stream = await navigator.mediaDevices.getUserMedia({ video: { width: { ideal: 640 }, height: { ideal: 480 } }, audio: false });
    } catch (err) {
      abandon(err && err.name === "NotAllowedError" ? "camera access refused" : `no camera (${err && err.name})`);
      return end("denied", "The camera is not available",
        "Nothing was recorded and no video was sent. To take part, allow this page to use your camera " +
        "(or connect one), then reload the page.");
    }
    $("preview").srcObject = s.stream;
    setTimeout(() => { if (!s.ended && document.body.dataset.state === "camera") $("start-anyway").hidden = false; }, 20000);
    faceLoop();
  }

  // The face the server found, framed on the (mirrored) preview.
  function showFaceBox(box) {
    const frame = $("face-box");
    frame.hidden = !box;
    if (!box) return;
    const [x, y, w, h] = box;
    frame.style.left = `${100 * (1 - x - w)}%`;
    frame.style.top = `${100 * y}%`;
    frame.style.width = `${100 * w}%`;
    frame.style.height = `${100 * h}%`;
  }

  function mark(id, ok, text) { $(id).dataset.ok = ok ? "yes" : "no"; $(id).textContent = text; }

  async function faceLoop() {
    const video = $("preview");
    while (!s.ended && document.body.dataset.state === "camera") {
      if (video.videoWidth) {
        const scale = Math.min(1, 640 / video.videoWidth);
        const canvas = document.createElement("canvas");
        canvas.width = Math.round(video.videoWidth * scale);
        canvas.height = Math.round(video.videoHeight * scale);
        canvas.getContext("2d").drawImage(video, 0, 0, canvas.width, canvas.height);
        const blob = await new Promise((res) => canvas.toBlob(res, "image/jpeg", 0.85));
        try {
          const r = await fetch(`${api}/face-check`, { method: "POST", body: blob, headers: { "Content-Type": "image/jpeg" } });
          if (r.ok) {
            const c = await r.json();
            mark("check-face", c.face_found, c.face_found ? "Face found" : "No face found: look at the screen");
            mark("check-light", c.lit, c.lit ? "Light is good" : "Too dark: turn on a light or face a window");
            if (c.face_found && c.lit) $("start-button").disabled = false;
            showFaceBox(c.box);
          }
        } catch (_) { /* try again */ }
      }
      await new Promise((res) => setTimeout(res, 1000));
    }
  }

  // ---- the ads ---------------------------------------------------------------------------------
  function pickMime() {
    for (const t of ["video/webm;codecs=vp8", "video/webm;codecs=vp9", "video/webm"]) {
      if (window.MediaRecorder && MediaRecorder.isTypeSupported(t)) return t;
    }
    return "";
  }

  async function start() {
    try {
      await run();
    } catch (err) {   // no MediaRecorder in this browser, a recorder that fails...
      if (s.ended) return;
      abandon(`the page failed: ${err && err.message}`);
      end("error", "This browser cannot record the session",
        `Nothing more will be recorded, and what was recorded has been deleted (${err && err.message}). ` +
        "Please try again with a recent Chrome, Edge or Firefox.");
    }
  }

  async function run() {
    setState("playing");
    show("stage");
    try { await $("stage").requestFullscreen(); } catch (_) { /* not allowed here: play in the page */ }
    s.mime = pickMime();
    s.recorder = new MediaRecorder(s.stream, s.mime ? { mimeType: s.mime, videoBitsPerSecond: 1000000 } : {});
    s.recorder.ondataavailable = (e) => { if (e.data && e.data.size) { s.queue.push(e.data); pump(); } };
    const started = new Promise((res) => { s.recorder.onstart = res; });
    s.recorder.start(1000);
    await started;
    s.t0 = performance.now();
    for (let i = 0; i < s.ads.length && !s.ended; i++) await playAd(i);
    if (s.ended) return;
    const stopped = new Promise((res) => { s.recorder.onstop = res; });
    s.recorder.stop();
    await stopped;
    stopCamera();
    if (document.fullscreenElement) document.exitFullscreen().catch(() => {});
    await finishUpload();
  }

  function playAd(i) {
    const ad = s.ads[i];
    const video = $("ad");
    const entry = { ad_id: ad.id, completed: false, segments: [] };
    s.timing.push(entry);
    $("stage-info").textContent = `Ad ${i + 1} of ${s.ads.length}`;
    let open = null;
    const openSeg = () => { if (!open) open = [now(), video.currentTime]; };
    const closeSeg = () => {
      if (open) { entry.segments.push([open[0], now(), open[1], video.currentTime]); open = null; }
    };
    return new Promise((resolve) => {
      const handlers = {
        playing: openSeg, waiting: closeSeg, pause: closeSeg,
        ended: () => { closeSeg(); entry.completed = true; finish(); },
        error: () => { closeSeg(); finish(); },
      };
      function finish() {
        for (const [k, f] of Object.entries(handlers)) video.removeEventListener(k, f);
        s.stopAd = null;
        resolve();
      }
      s.stopAd = () => { closeSeg(); finish(); };
      for (const [k, f] of Object.entries(handlers)) video.addEventListener(k, f);
      video.src = ad.url;
      video.play().catch(() => { video.controls = true; });  // autoplay refused: the viewer presses play
    });
  }

  // ---- upload ----------------------------------------------------------------------------------
  function uploadInfo(text) { $("upload-info").textContent = text; $("upload-text").textContent = text; }

  async function pump() {
    if (s.uploading) return;
    s.uploading = true;
    try {
      while (s.queue.length && !s.ended) {
        const blob = s.queue[0];
        const skip = Math.max(0, s.acked - s.offset);   // bytes of this blob the server already holds
        if (skip >= blob.size) { s.offset += blob.size; s.queue.shift(); continue; }
        const part = blob.slice(skip, skip + (s.chunkBytes || 4194304));   // at most one request's worth
        const url = `${api}/sessions/${encodeURIComponent(s.session)}/recording?offset=${s.offset + skip}`;
        try {
          const r = await fetch(url, { method: "POST", body: part, headers: { "Content-Type": "application/octet-stream" } });
          if (r.ok) {
            s.acked = (await r.json()).received;   // the loop drops the blob once all of it is acknowledged
            s.failingSince = null;
            $("upload-warning").hidden = true;
            uploadInfo(`${(s.acked / 1048576).toFixed(1)} MB sent`);
            continue;
          }
          if (r.status === 409 || r.status >= 500) await resync();
          if (r.status === 409 || r.status >= 500) continue;
          s.ended = true;
          return end("error", "The recording could not be sent", await errorText(r));
        } catch (_) {
          await resync();
        }
      }
    } finally {
      s.uploading = false;
    }
  }

  async function resync() {
    // the connection dropped or the server holds other bytes: ask where it stands, then go on from there
    s.failingSince = s.failingSince || performance.now();
    const waited = performance.now() - s.failingSince;
    uploadInfo("Connection lost: retrying…");
    if (waited > STALL_WARN_MS) {
      $("upload-warning").textContent = "The upload has stalled. Keep this page open: it goes on by itself " +
        "as soon as the connection is back (your recording is kept in this page until then).";
      $("upload-warning").hidden = false;
    }
    await new Promise((res) => setTimeout(res, Math.min(RETRY_MAX_MS, 500 + waited / 4)));
    try {
      const r = await fetch(`${api}/sessions/${encodeURIComponent(s.session)}`);
      if (r.ok) {
        const st = await r.json();
        if (st.state !== "consented" && st.state !== "recording") {
          s.ended = true;
          end("stopped", "This session has ended", st.reason || `the server says it is ${st.state}`);
          return;
        }
        s.acked = st.received;
      }
    } catch (_) { /* still offline */ }
  }

  async function finishUpload() {
    setState("uploading");
    show("step-upload");
    const total = s.queue.reduce((n, b) => n + b.size, s.offset);
    while ((s.queue.length || s.uploading) && !s.ended) {
      $("upload-progress").value = total ? Math.min(1, s.acked / total) : 1;
      pump();
      await new Promise((res) => setTimeout(res, 200));
    }
    if (s.ended) return;
    $("upload-progress").value = 1;
    const r = await fetch(`${api}/sessions/${encodeURIComponent(s.session)}/finish`, {
      method: "POST", headers: { "Content-Type": "application/json" },
      // an ad that never played (the browser could not play it) has no stretch: leave it out
      body: JSON.stringify({ timing: s.timing.filter((t) => t.segments.length), mime: s.mime || null }),
    }).catch((err) => ({ ok: false, status: 0, json: async () => ({ error: { message: err.message } }) }));
    if (!r.ok) return end("error", "The recording could not be completed", await errorText(r));
    s.finished = true;
    end("done", "Thank you!", "Your part is done. The recording has been sent and will be analysed; you can close this page.");
  }

  function stopByViewer() {
    if (s.ended) return;
    if (s.stopAd) s.stopAd();
    if (s.recorder && s.recorder.state !== "inactive") s.recorder.stop();
    abandon("the viewer stopped");
    end("stopped", "Stopped", "You stopped the study. What was recorded has been deleted. Thank you for your time.");
  }

  function setup() {
    $("consent-form").addEventListener("submit", agree);
    $("start-button").addEventListener("click", start);
    $("start-anyway").addEventListener("click", start);
    for (const b of document.querySelectorAll(".stop-button")) b.addEventListener("click", stopByViewer);
    window.addEventListener("pagehide", () => abandon("the viewer closed the page"));
    window.addEventListener("beforeunload", (e) => {
      if (s.session && !s.finished && !s.ended && document.body.dataset.state !== "consent") e.preventDefault();
    });
    load();
  }

  document.addEventListener("DOMContentLoaded", setup);
})();
