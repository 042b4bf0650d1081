// emolens web page, long work: upload a video or a campaign (manifest + files) with upload progress,
// follow its job, then list the result files (and the campaign's report); list the ad studies.
// Vanilla JS next to app.js (which handles photos); nothing loaded from elsewhere.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  let needKey = false;

  function el(tag, cls, text) {
    const n = document.createElement(tag);
    if (cls) n.className = cls;
    if (text !== undefined) n.textContent = text;
    return n;
  }
  function headers() {
    const box = $("api-key");
    const key = box ? box.value.trim() : "";
    return key ? { "X-API-Key": key } : {};
  }
  function messageOf(text, status) {
    try { const b = JSON.parse(text); if (b && b.error) return `${b.error.type}: ${b.error.message}`; } catch (_) { /* */ }
    return `the server answered ${status}`;
  }

  // A link to a job file; with an API key, a button that downloads it through fetch (a link cannot carry the key).
  function fileLink(url, name) {
    if (!needKey) {
      const a = el("a", null, name);
      a.href = url;
      a.target = "_blank";
      a.rel = "noopener";
      return a;
    }
    const b = el("button", "secondary", name);
    b.type = "button";
    b.addEventListener("click", async () => {
      const r = await fetch(url, { headers: headers() });
      if (!r.ok) { b.textContent = `${name}: ${messageOf(await r.text(), r.status)}`; return; }
      const a = el("a");
      a.href = URL.createObjectURL(await r.blob());
      a.download = name.split("/").pop();
      a.click();
      setTimeout(() => URL.revokeObjectURL(a.href), 10000);
    });
    return b;
  }

  // POST a FormData with upload progress; resolves {ok, status, body}.
  function send(url, form, bar, text) {
    return new Promise((resolve) => {
      const xhr = new XMLHttpRequest();
      xhr.open("POST", url);
      for (const [k, v] of Object.entries(headers())) xhr.setRequestHeader(k, v);
      xhr.upload.onprogress = (e) => {
        if (!e.lengthComputable) return;
        bar.value = e.loaded / e.total;
        text.textContent = `Uploading: ${Math.round(100 * e.loaded / e.total)}%`;
      };
      xhr.onload = () => resolve({ ok: xhr.status >= 200 && xhr.status < 300, status: xhr.status, body: xhr.responseText });
      xhr.onerror = () => resolve({ ok: false, status: 0, body: "" });
      xhr.send(form);
    });
  }

  function jobCard(title) {
    const card = el("article", "card job");
    card.dataset.status = "uploading";
    const bar = el("progress");
    bar.max = 1;
    bar.value = 0;
    const text = el("p", "status", "Uploading…");
    card.append(el("h2", null, title), bar, text, el("div", "files"));
    $("job-results").prepend(card);
    return { card, bar, text };
  }

  async function follow(created, view, isCampaign) {
    const { card, bar, text } = view;
    card.dataset.status = "running";
    card.dataset.job = created.job_id;
    for (;;) {
      const r = await fetch(created.links.self, { headers: headers() }).catch(() => null);
      if (r && r.ok) {
        const job = await r.json();
        bar.value = job.progress;
        text.textContent = `${job.state}: ${Math.round(100 * job.progress)}% ${job.message || ""}`;
        if (job.state === "failed") {
          card.dataset.status = "error";
          card.classList.add("error");
          text.replaceWith(el("p", "error-message", `${job.error_type}: ${job.error}`));
          return;
        }
        if (job.state === "succeeded") break;
      }
      await new Promise((res) => setTimeout(res, 1000));
    }
    const r = await fetch(created.links.result, { headers: headers() });
    const result = await r.json();
    const files = card.querySelector(".files");
    if (isCampaign && created.links.report) files.append(fileLink(created.links.report, "report.html"), " ");
    for (const f of result.files) {
      if (!(isCampaign && f.name === "report.html")) files.append(fileLink(f.url, f.name), " ");  // linked above
    }
    text.textContent = `Done: ${result.files.length} files`;
    card.dataset.status = "done";
  }

  async function submit(url, form, title, isCampaign) {
    const view = jobCard(title);
    const r = await send(url, form, view.bar, view.text);
    if (!r.ok) {
      view.card.dataset.status = "error";
      view.card.classList.add("error");
      view.text.replaceWith(el("p", "error-message", messageOf(r.body, r.status)));
      return;
    }
    await follow(JSON.parse(r.body), view, isCampaign);
  }

  function sendVideo(e) {
    e.preventDefault();
    const file = $("video-file").files[0];
    if (!file) return;
    const form = new FormData();
    form.append("file", file, file.name);
    form.append("every", $("video-every").value || "1");
    form.append("annotate", $("video-annotate").checked ? "true" : "false");
    form.append("blur", $("video-blur").checked ? "true" : "false");
    submit("/v1/videos", form, `Video ${file.name}`, false);
  }

  // The files of a campaign, each named by its path relative to the manifest.
  function campaignParts() {
    const folder = [...$("campaign-folder").files];
    if (folder.length) {
      const manifests = folder.filter((f) => /\.(ya?ml|csv)$/i.test(f.name))
        .sort((a, b) => a.webkitRelativePath.split("/").length - b.webkitRelativePath.split("/").length);
      if (!manifests.length) return { error: "the folder holds no manifest (.yaml, .yml or .csv)" };
      const manifest = manifests[0];
      const base = manifest.webkitRelativePath.split("/").slice(0, -1).join("/") + "/";
      const files = folder.filter((f) => f !== manifest && f.webkitRelativePath.startsWith(base))
        .map((f) => [f, f.webkitRelativePath.slice(base.length)]);
      return { manifest, files };
    }
    const manifest = $("campaign-manifest").files[0];
    if (!manifest) return { error: "choose the campaign folder, or the manifest and its files" };
    return { manifest, files: [...$("campaign-files").files].map((f) => [f, f.name]) };
  }

  function sendCampaign(e) {
    e.preventDefault();
    const parts = campaignParts();
    if (parts.error) { $("campaign-error").textContent = parts.error; $("campaign-error").hidden = false; return; }
    $("campaign-error").hidden = true;
    const form = new FormData();
    form.append("manifest", parts.manifest, parts.manifest.name);
    for (const [f, name] of parts.files) form.append("files", f, name);
    form.append("sample_fps", $("campaign-fps").value || "5");
    submit("/v1/campaigns", form, `Campaign ${parts.manifest.name}`, true);
  }

  async function loadStudies() {
    const box = $("study-links");
    try {
      const r = await fetch("/v1/studies", { headers: headers() });
      if (!r.ok) { box.replaceChildren(el("span", "muted", messageOf(await r.text(), r.status))); return; }
      const { studies } = await r.json();
      if (!studies.length) { box.replaceChildren(el("span", "muted", "No study yet.")); return; }
      box.replaceChildren(...studies.map((s) => {
        const li = el("li");
        const a = el("a", null, s.name);
        a.href = `/studies?study=${encodeURIComponent(s.id)}`;
        li.append(a, el("span", "muted", ` ${s.ads} ads, ${s.counts.analysed} of ${s.counts.viewers} viewers analysed`));
        return li;
      }));
    } catch (_) { /* the server info line says it */ }
  }

  async function setup() {
    if (!$("video-form")) return;
    $("video-form").addEventListener("submit", sendVideo);
    $("campaign-form").addEventListener("submit", sendCampaign);
    try { needKey = Boolean((await (await fetch("/healthz")).json()).api_key_required); } catch (_) { /* */ }
    const key = $("api-key");
    if (key) key.addEventListener("change", loadStudies);
    loadStudies();
  }

  document.addEventListener("DOMContentLoaded", setup);
})();
