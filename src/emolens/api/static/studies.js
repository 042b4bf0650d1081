// emolens marketer page: create a study (ads uploaded one by one with progress), list studies, follow
// one: viewer link, viewers with their analysis progress and QC, the report and its KPIs.
// Vanilla JS, nothing loaded from elsewhere. document.body.dataset.state: loading | ready | error.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const state = { needKey: false, selected: null, timer: null, studies: [] };
  const KPI_NAMES = {
    face_found_rate: "face found", positive_share: "positive", negative_share: "negative",
    expressiveness: "expressive", valence_index: "valence", peak_happiness: "peak happiness",
  };

  function el(tag, cls, text) {
    const n = document.createElement(tag);
    if (cls) n.className = cls;
    if (text !== undefined && text !== null) n.textContent = text;
    return n;
  }
  function pill(text) { const p = el("span", "pill", text); p.dataset.state = text; return p; }
  function headers() {
    const key = $("api-key").value.trim();
    return key ? { "X-API-Key": key } : {};
  }
  async function errorText(r) {
    try { const b = await r.json(); if (b && b.error) return `${b.error.type}: ${b.error.message}`; } catch (_) { /* */ }
    return `the server answered ${r.status}`;
  }
  async function getJson(url) {
    const r = await fetch(url, { headers: headers() });
    if (!r.ok) throw new Error(await errorText(r));
    return r.json();
  }
  function row(cells, head) {
    const tr = el("tr");
    for (const c of cells) {
      const td = el(head ? "th" : "td");
      if (c instanceof Node) td.append(c); else td.textContent = c === null || c === undefined ? "" : String(c);
      if (typeof c === "number") td.className = "num";
      tr.append(td);
    }
    return tr;
  }
  function num(v, digits = 2) { return v === null || v === undefined ? "—" : Number(v).toFixed(digits); }

  // ---- list ------------------------------------------------------------------------------------
  async function loadList() {
    let data;
    try { data = await getJson("/v1/studies"); } catch (err) {
      $("study-list").replaceChildren(el("p", "error-message", err.message));
      return;
    }
    state.studies = data.studies;
    const list = $("study-list");
    if (!data.studies.length) {
      list.replaceChildren(el("p", "muted", "No study yet: create the first one."));
      return;
    }
    list.replaceChildren(...data.studies.map((s) => {
      const item = el("div", "study-item");
      item.dataset.id = s.id;
      if (s.id === state.selected) item.classList.add("selected");
      const c = s.counts;
      item.append(el("strong", null, s.name), el("span", "muted", `${s.ads} ads`),
        el("span", "muted", `${c.analysed} analysed of ${c.viewers} viewers`),
        s.report_url ? pill("report ready") : el("span", "muted", "no report yet"));
      item.addEventListener("click", () => select(s.id));
      return item;
    }));
  }

  // ---- detail ----------------------------------------------------------------------------------
  async function select(id) {
    state.selected = id;
    for (const it of document.querySelectorAll(".study-item")) it.classList.toggle("selected", it.dataset.id === id);
    await refresh();
  }

  async function refresh() {
    clearTimeout(state.timer);
    if (!state.selected) return;
    let s;
    try { s = await getJson(`/v1/studies/${state.selected}`); } catch (err) {
      $("detail").hidden = false;
      $("d-name").textContent = err.message;
      return;
    }
    renderDetail(s);
    const busy = s.sessions.some((x) => ["consented", "recording", "analysing"].includes(x.state));
    state.timer = setTimeout(() => { refresh(); loadList(); }, busy ? 2000 : 10000);
  }

  function renderDetail(s) {
    $("detail").hidden = false;
    $("d-name").textContent = s.name;
    const keep = s.keep_recordings ? `recordings kept ${s.retention_days} days` : "recordings deleted after analysis";
    $("d-meta").textContent = `Created ${s.created_at} · ads ${s.order === "random" ? "shuffled per viewer" : "in order"} · ` +
      `${keep}${s.closes_at ? ` · link closes ${s.closes_at}` : ""}${s.closed ? " (closed)" : ""}`;
    $("d-link").value = s.viewer_url;
    const ads = $("d-ads");
    ads.replaceChildren(row(["#", "ad", "duration", "size"], true),
      ...s.ads.map((a, i) => row([String(i + 1), a.name, `${a.duration_s.toFixed(1)} s`, `${a.width}×${a.height}`])));
    const c = s.counts;
    $("d-counts").textContent = `(${c.viewers}: ${c.analysed} analysed, ${c.analysing} analysing, ` +
      `${c.recording + c.consented} watching, ${c.abandoned} abandoned, ${c.failed} failed; ${c.excluded} ad views excluded by QC)`;
    const sessions = $("d-sessions");
    sessions.replaceChildren(row(["viewer", "state", "answers", "analysis", "quality control"], true),
      ...s.sessions.map((x) => {
        const answers = Object.entries(x.answers).filter(([, v]) => v).map(([k, v]) => `${k}: ${v}`).join(", ");
        const st = el("span");
        st.append(pill(x.state));
        if (x.reason) st.append(el("div", "muted", x.reason));
        let analysis = "—";
        if (x.analysis) {
          analysis = el("span");
          analysis.append(pill(x.analysis.state), el("span", "muted", ` ${Math.round(100 * x.analysis.progress)}% ${x.analysis.message}`));
        }
        const qc = el("div");
        for (const q of x.qc) {
          const line = el("div");
          line.append(pill(q.status), document.createTextNode(` ${q.ad}`));
          if (q.reason) line.append(el("span", "muted", `: ${q.reason}`));
          qc.append(line);
        }
        return row([x.viewer, st, answers, analysis, qc]);
      }));
    renderReport(s);
  }

  function fileLink(url, name) {
    if (!state.needKey) {
      const a = el("a", null, name);
      a.href = url;
      a.target = "_blank";
      a.rel = "noopener";
      return a;
    }
    const b = el("button", "secondary", `Download ${name}`);   // a link cannot carry the API key
    b.type = "button";
    b.addEventListener("click", async () => {
      const r = await fetch(url, { headers: headers() });
      if (!r.ok) { alert(await errorText(r)); return; }
      const a = el("a");
      a.href = URL.createObjectURL(await r.blob());
      a.download = name;
      a.click();
      setTimeout(() => URL.revokeObjectURL(a.href), 10000);
    });
    return b;
  }

  function renderReport(s) {
    const box = $("d-report");
    const rep = s.report;
    if (!rep.available) {
      $("d-report-info").textContent = "(appears when the first viewer has been analysed)";
      box.replaceChildren();
      $("d-kpis").replaceChildren();
      return;
    }
    $("d-report-info").textContent = `(${rep.viewers} viewer${rep.viewers === 1 ? "" : "s"})`;
    const links = el("p", "link-box");
    links.append(fileLink(rep.url, "report.html"));
    for (const [name, url] of Object.entries(rep.files)) links.append(fileLink(url, name));
    box.replaceChildren(links);
    const keys = Object.keys(KPI_NAMES);
    $("d-kpis").replaceChildren(row(["ad", "viewers kept", ...keys.map((k) => KPI_NAMES[k])], true),
      ...rep.ads.map((a) => row([a.name, `${a.viewers_kept} / ${a.viewers_total}`, ...keys.map((k) => num(a.kpis[k]))])));
  }

  // ---- create ----------------------------------------------------------------------------------
  function parseQuestions(text) {
    const out = [];
    for (const line of text.split("\n").map((l) => l.trim()).filter(Boolean)) {
      const [head, choices] = line.split("|");
      const i = head.indexOf(":");
      const key = (i >= 0 ? head.slice(0, i) : head).trim();
      const label = (i >= 0 ? head.slice(i + 1) : head).trim();
      out.push({ key, label, choices: choices ? choices.split(",").map((c) => c.trim()).filter(Boolean) : [] });
    }
    return out;
  }

  function uploadAd(studyId, file, line) {
    return new Promise((resolve) => {
      const name = file.name.replace(/\.[^.]+$/, "") || "ad";
      const xhr = new XMLHttpRequest();
      const q = new URLSearchParams({ name, filename: file.name });
      xhr.open("POST", `/v1/studies/${studyId}/ads?${q}`);
      for (const [k, v] of Object.entries(headers())) xhr.setRequestHeader(k, v);
      xhr.setRequestHeader("Content-Type", "application/octet-stream");
      xhr.upload.onprogress = (e) => { if (e.lengthComputable) line.textContent = `${file.name}: ${Math.round(100 * e.loaded / e.total)}%`; };
      xhr.onload = () => {
        let msg = "";
        try { const b = JSON.parse(xhr.responseText); msg = b.error ? `${b.error.type}: ${b.error.message}` : ""; } catch (_) { /* */ }
        const ok = xhr.status === 201;
        line.textContent = ok ? `${file.name}: added` : `${file.name}: ${msg || xhr.status}`;
        line.className = ok ? "muted" : "error-message";
        resolve(ok);
      };
      xhr.onerror = () => { line.textContent = `${file.name}: the upload failed`; line.className = "error-message"; resolve(false); };
      xhr.send(file);
    });
  }

  async function create(e) {
    e.preventDefault();
    const status = $("create-status");
    status.replaceChildren();
    const closes = $("f-closes").value;
    const body = {
      name: $("f-name").value, order: $("f-order").value, keep_recordings: $("f-keep").checked,
      retention_days: Number($("f-days").value || 30), questions: parseQuestions($("f-questions").value),
      options: { sample_fps: Number($("f-fps").value || 5) },
      closes_at: closes ? new Date(closes).toISOString() : null,
    };
    const r = await fetch("/v1/studies", { method: "POST", headers: { ...headers(), "Content-Type": "application/json" }, body: JSON.stringify(body) });
    if (!r.ok) { status.append(el("p", "error-message", await errorText(r))); return; }
    const study = await r.json();
    for (const file of $("f-ads").files) {
      const line = el("div", "muted", `${file.name}: waiting`);
      status.append(line);
      await uploadAd(study.id, file, line);
    }
    status.append(el("p", "muted", "Study created. Send the viewer link below."));
    await loadList();
    await select(study.id);
  }

  async function remove() {
    if (!state.selected || !confirm("Delete this study, its recordings, analyses and report?")) return;
    const r = await fetch(`/v1/studies/${state.selected}`, { method: "DELETE", headers: headers() });
    if (!r.ok) { alert(await errorText(r)); return; }
    state.selected = null;
    $("detail").hidden = true;
    await loadList();
  }

  async function setup() {
    $("api-key").value = sessionStorage.getItem("emolens-key") || "";
    $("key-apply").addEventListener("click", () => { sessionStorage.setItem("emolens-key", $("api-key").value.trim()); loadList(); });
    $("new-study").addEventListener("click", () => { $("create").hidden = false; $("f-name").focus(); });
    $("create-cancel").addEventListener("click", () => { $("create").hidden = true; });
    $("create-form").addEventListener("submit", create);
    $("d-copy").addEventListener("click", () => { $("d-link").select(); navigator.clipboard && navigator.clipboard.writeText($("d-link").value); });
    $("d-delete").addEventListener("click", remove);
    try {
      const info = await (await fetch("/healthz")).json();
      state.needKey = Boolean(info.api_key_required);
      $("key-box").hidden = !state.needKey;
    } catch (_) { /* shown by the list */ }
    await loadList();
    const wanted = new URLSearchParams(location.search).get("study");
    if (wanted) await select(wanted);
    document.body.dataset.state = "ready";
  }

  document.addEventListener("DOMContentLoaded", setup);
})();
