// emolens web page: upload images, draw each face's box and emotion, sum up all faces.
// Vanilla JS, no framework, nothing loaded from outside this server.
"use strict";

(function () {
  const COLORS = {
    anger: "#d62728", disgust: "#7b8b2a", fear: "#9467bd", happiness: "#e8a800",
    sadness: "#1f77b4", surprise: "#ff7f0e", neutral: "#7f7f7f", contempt: "#17becf",
  };
  const MAX_CANVAS = 900;     // drawing width cap, in canvas pixels
  const CONCURRENCY = 2;      // uploads in flight at once

  const state = { limits: null, labels: [], faces: [], queue: [], active: 0, generation: 0 };
  const $ = (id) => document.getElementById(id);

  function colorFor(label) {
    if (COLORS[label]) return COLORS[label];
    let h = 0;
    for (const ch of label) h = (h * 31 + ch.charCodeAt(0)) % 360;
    return `hsl(${h}, 60%, 45%)`;
  }

  function el(tag, cls, text) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function humanBytes(n) {
    if (n >= 1 << 20) return `${(n / (1 << 20)).toFixed(1).replace(/\.0$/, "")} MB`;
    if (n >= 1 << 10) return `${(n / (1 << 10)).toFixed(1).replace(/\.0$/, "")} KB`;
    return `${n} bytes`;
  }

  function pct(p) { return `${(100 * p).toFixed(1)}%`; }

  // One row: name, a bar as wide as `fraction` of the track, and a value text.
  function barRow(label, fraction, valueText, isTop) {
    const row = el("div", isTop ? "bar top" : "bar");
    row.dataset.label = label;
    const name = el("span", "name");
    const sw = el("span", "swatch");
    sw.style.background = colorFor(label);
    name.append(sw, document.createTextNode(label));
    const track = el("span", "track");
    const fill = el("span", "fill");
    fill.style.display = "block";
    fill.style.width = `${Math.max(0, Math.min(1, fraction)) * 100}%`;
    fill.style.background = colorFor(label);
    track.append(fill);
    row.append(name, track, el("span", "value", valueText));
    return row;
  }

  function probabilityBars(probabilities) {
    const box = el("div", "bars");
    const entries = Object.entries(probabilities).sort((a, b) => b[1] - a[1]);
    entries.forEach(([label, p], i) => box.append(barRow(label, p, pct(p), i === 0)));
    return box;
  }

  function apiHeaders() {
    const key = $("api-key").value.trim();
    return key ? { "X-API-Key": key } : {};
  }

  async function errorMessage(response) {
    try {
      const body = await response.json();
      if (body && body.error && body.error.message) return body.error.message;
    } catch (_) { /* not JSON */ }
    return `the server answered ${response.status} ${response.statusText}`;
  }

  // ---- server info ---------------------------------------------------------------------------
  async function loadInfo() {
    try {
      const response = await fetch("/healthz");
      if (!response.ok) throw new Error(await errorMessage(response));
      const info = await response.json();
      state.limits = info.limits;
      $("server-info").textContent = `Model: ${info.model}`;
      $("version").textContent = info.version;
      $("limits-info").textContent =
        `Up to ${humanBytes(info.limits.max_upload_bytes)} and ` +
        `${(info.limits.max_pixels / 1e6).toFixed(0)} megapixels per image.`;
      $("key-box").hidden = !info.api_key_required;
    } catch (err) {
      $("server-info").textContent = `The server does not answer: ${err.message}`;
    }
  }

  // ---- one image -----------------------------------------------------------------------------
  function newCard(file) {
    const card = el("article", "card");
    card.dataset.status = "pending";
    card.append(el("h2", null, file.name || "image"));
    const canvas = el("canvas");
    canvas.width = 320;
    canvas.height = 40;
    canvas.hidden = true;
    card.append(canvas, el("p", "status", "Waiting…"), el("div", "faces"));
    $("results").prepend(card);
    return card;
  }

  function showError(card, message) {
    card.dataset.status = "error";
    card.classList.add("error");
    const status = card.querySelector(".status");
    if (status) status.remove();
    card.querySelector("canvas").hidden = true;
    card.insertBefore(el("p", "error-message", message), card.querySelector(".faces"));
  }

  function loadImage(file) {
    return new Promise((resolve) => {
      const url = URL.createObjectURL(file);
      const img = new Image();
      img.onload = () => resolve({ img, url });
      img.onerror = () => { URL.revokeObjectURL(url); resolve({ img: null, url: null }); };
      img.src = url;
    });
  }

  function drawResult(canvas, img, result) {
    const scale = Math.min(1, MAX_CANVAS / result.width);
    canvas.width = Math.max(1, Math.round(result.width * scale));
    canvas.height = Math.max(1, Math.round(result.height * scale));
    const ctx = canvas.getContext("2d");
    if (img) {
      ctx.drawImage(img, 0, 0, canvas.width, canvas.height);
    } else {   // a format the browser cannot show (TIFF...): boxes on grey
      ctx.fillStyle = "#d0d5dd";
      ctx.fillRect(0, 0, canvas.width, canvas.height);
    }
    const line = Math.max(2, Math.round(canvas.width / 300));
    ctx.font = `${Math.max(12, Math.round(canvas.width / 45))}px system-ui, sans-serif`;
    ctx.textBaseline = "top";
    result.faces.forEach((face, i) => {
      const [x, y, w, h] = face.box.map((v) => v * scale);
      const color = colorFor(face.emotion);
      ctx.lineWidth = line;
      ctx.strokeStyle = color;
      ctx.strokeRect(x, y, w, h);
      const text = `${i + 1} ${face.emotion} ${Math.round(100 * face.confidence)}%`;
      const tw = ctx.measureText(text).width + 8;
      const th = parseInt(ctx.font, 10) + 6;
      const ty = y - th >= 0 ? y - th : y + h;
      ctx.fillStyle = color;
      ctx.fillRect(x - line / 2, ty, tw, th);
      ctx.fillStyle = "#fff";
      ctx.fillText(text, x + 4 - line / 2, ty + 3);
    });
    canvas.hidden = false;
  }

  function showResult(card, img, result) {
    card.dataset.status = "done";
    const n = result.faces.length;
    const ms = Object.values(result.timings_ms || {}).reduce((a, b) => a + b, 0);
    card.querySelector(".status").textContent =
      `${result.width}×${result.height}: ${n === 0 ? "no face found" : `${n} face${n > 1 ? "s" : ""}`}` +
      (ms ? ` in ${Math.round(ms)} ms` : "");
    drawResult(card.querySelector("canvas"), img, result);
    const list = card.querySelector(".faces");
    result.faces.forEach((face, i) => {
      const box = el("div", "face");
      const title = el("h3", null, `Face ${i + 1}: ${face.emotion} (${pct(face.confidence)})`);
      box.append(title, probabilityBars(face.probabilities));
      list.append(box);
    });
  }

  async function analyze(file, card, generation) {
    const limits = state.limits;
    if (limits && file.size > limits.max_upload_bytes) {
      showError(card, `${file.name}: ${humanBytes(file.size)} is over the limit of ` +
        `${humanBytes(limits.max_upload_bytes)} per image`);
      return;
    }
    card.querySelector(".status").textContent = "Analysing…";
    const form = new FormData();
    form.append("file", file, file.name);
    const params = new URLSearchParams();
    if ($("opt-cropped").checked) params.set("cropped", "true");
    if ($("opt-tta").checked) params.set("tta", "true");
    let response;
    try {
      const query = params.toString() ? `?${params}` : "";
      response = await fetch(`/v1/analyze${query}`, { method: "POST", body: form, headers: apiHeaders() });
    } catch (err) {
      showError(card, `${file.name}: the upload failed (${err.message})`);
      return;
    }
    if (generation !== state.generation) return;   // cleared meanwhile
    if (!response.ok) {
      showError(card, await errorMessage(response));
      return;
    }
    const result = await response.json();
    const { img, url } = await loadImage(file);
    showResult(card, img, result);
    if (url) URL.revokeObjectURL(url);
    addToSummary(result);
  }

  // ---- all faces -----------------------------------------------------------------------------
  function addToSummary(result) {
    for (const face of result.faces) {
      state.faces.push(face);
      for (const label of Object.keys(face.probabilities)) {
        if (!state.labels.includes(label)) state.labels.push(label);
      }
    }
    renderSummary();
  }

  function renderSummary() {
    const n = state.faces.length;
    $("summary").hidden = n === 0;
    if (n === 0) return;
    $("summary-count").textContent = `(${n} face${n > 1 ? "s" : ""})`;
    const mean = {}, counts = {};
    for (const label of state.labels) { mean[label] = 0; counts[label] = 0; }
    for (const face of state.faces) {
      counts[face.emotion] += 1;
      for (const [label, p] of Object.entries(face.probabilities)) mean[label] += p / n;
    }
    const byMean = [...state.labels].sort((a, b) => mean[b] - mean[a]);
    const meanBox = $("summary-mean");
    meanBox.replaceChildren(...byMean.map((lb, i) => barRow(lb, mean[lb], pct(mean[lb]), i === 0)));
    const byCount = [...state.labels].sort((a, b) => counts[b] - counts[a]);
    const countBox = $("summary-counts");
    countBox.replaceChildren(...byCount.map((lb, i) =>
      barRow(lb, counts[lb] / n, `${counts[lb]}`, i === 0 && counts[lb] > 0)));
  }

  // ---- queue and inputs ----------------------------------------------------------------------
  function pump() {
    while (state.active < CONCURRENCY && state.queue.length) {
      const { file, card, generation } = state.queue.shift();
      state.active += 1;
      analyze(file, card, generation)
        .catch((err) => showError(card, `${file.name}: ${err.message}`))
        .finally(() => { state.active -= 1; pump(); });
    }
  }

  function addFiles(files) {
    for (const file of files) {
      state.queue.push({ file, card: newCard(file), generation: state.generation });
    }
    pump();
  }

  function clearAll() {
    state.generation += 1;
    state.queue = [];
    state.faces = [];
    state.labels = [];
    $("results").replaceChildren();
    renderSummary();
  }

  function setup() {
    const input = $("file-input");
    input.addEventListener("change", () => { addFiles([...input.files]); input.value = ""; });
    const zone = $("drop-zone");
    for (const type of ["dragenter", "dragover"]) {
      document.addEventListener(type, (e) => { e.preventDefault(); zone.classList.add("dragging"); });
    }
    for (const type of ["dragleave", "dragend"]) {
      document.addEventListener(type, () => zone.classList.remove("dragging"));
    }
    document.addEventListener("drop", (e) => {
      e.preventDefault();
      zone.classList.remove("dragging");
      if (e.dataTransfer && e.dataTransfer.files.length) addFiles([...e.dataTransfer.files]);
    });
    zone.addEventListener("keydown", (e) => {
      if (e.key === "Enter" || e.key === " ") { e.preventDefault(); input.click(); }
    });
    $("clear").addEventListener("click", clearAll);
    loadInfo();
  }

  document.addEventListener("DOMContentLoaded", setup);
})();
