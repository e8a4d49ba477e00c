// Remake editor: start a remake, then per target shot see the chosen match and its suggestions,
// swap, preview the pair, render with progress, play and download.
"use strict";

let current = null;  // the open project's id

async function loadTargets() {
  const data = await api("/api/targets");
  const select = document.getElementById("target-path");
  for (const path of data.videos) select.append(el("option", { value: path }, path));
  if (!data.allow.length) select.firstElementChild.textContent = "(no --allow folders: upload a video)";
}

async function loadProjects(selectId = null) {
  const data = await api("/api/projects");
  const select = document.getElementById("projects");
  select.replaceChildren(el("option", { value: "" }, "open a project…"),
    ...data.projects.map((p) => el("option", { value: p.id }, `${p.name} (${new Date(p.created * 1000).toLocaleString()})${p.ready ? "" : " – not matched"}`)));
  if (selectId) select.value = selectId;
}

function showProgress(bar, label, job) {
  bar.classList.remove("hidden");
  bar.value = job.fraction;
  label.classList.toggle("error", job.state === "failed");
  label.textContent = job.state === "done" ? `done in ${job.seconds.toFixed(1)} s`
    : job.state === "failed" ? `failed: ${job.error}` : `${job.stage} ${Math.round(100 * job.fraction)}%`;
}

document.getElementById("start").addEventListener("click", async () => {
  const form = new FormData();
  const file = document.getElementById("target-file").files[0];
  const path = document.getElementById("target-path").value;
  if (file) form.append("file", file);
  else if (path) form.append("path", path);
  else { toast("choose a target: a video from the list, or upload one"); return; }
  form.append("suggestions", document.getElementById("suggestions").value);
  const button = document.getElementById("start");
  button.disabled = true;
  try {
    const started = await api("/api/projects", { method: "POST", body: form });
    const bar = document.getElementById("match-progress"), label = document.getElementById("match-stage");
    // A failed match still opens the project: its page says why and offers a retry.
    await followJob(started.job, (job) => showProgress(bar, label, job)).catch(() => {});
    await loadProjects(started.project);
    await openProject(started.project);
  } finally {
    button.disabled = false;
  }
});

document.getElementById("projects").addEventListener("change", (e) => { if (e.target.value) openProject(e.target.value); });

async function openProject(pid) {
  current = pid;
  history.replaceState(null, "", `/remake?project=${pid}`);
  const p = await api(`/api/projects/${pid}`);
  document.getElementById("project").classList.remove("hidden");
  document.getElementById("project-title").textContent = `${p.name} · ${p.shots.length} shots`;
  drawTimeline(p);
  drawDownloads(p);
  // Not matched and nothing running: the matching failed (or a restart stopped it).
  document.getElementById("match-failed").classList.toggle("hidden", p.ready || !!p.job);
  document.getElementById("match-error").textContent =
    `matching failed: ${p.match_error || "it did not finish (the server stopped?)"}`;
  if (p.job) {  // reopened while it was still matching or rendering
    const bar = document.getElementById(p.job.kind === "render" ? "render-progress" : "match-progress");
    const label = document.getElementById(p.job.kind === "render" ? "render-stage" : "match-stage");
    await followJob(p.job.id, (job) => showProgress(bar, label, job));
    if (current === pid) return openProject(pid);  // unless another project was opened meanwhile
  }
}

function drawTimeline(p) {
  const box = document.getElementById("timeline");
  box.replaceChildren(...p.shots.map((s) => {
    const target = el("div", { class: "target" },
      el("img", { src: `/api/projects/${p.id}/shots/${s.index}/thumb.jpg`, alt: `target shot ${s.index}` }),
      el("div", { class: "tc" }, `#${s.index + 1} ${s.timecode} · ${(s.end - s.start).toFixed(2)} s`),
      el("button", { onclick: () => preview(p, s), "data-preview": s.index }, "▶ preview"));
    const chosenShot = s.chosen !== null && s.chosen !== undefined ? s.suggestions[s.chosen] : null;
    const chosen = el("div", { class: "chosen" }, chosenShot
      ? shotTile(chosenShot, { score: chosenShot.score, caption: `${chosenShot.name} ${fmt(chosenShot.start)}` })
      : el("div", { class: "dim" }, s.black ? "black in the target: stays black" : "no match"));
    const others = el("div", { class: "suggestions" }, s.suggestions.map((g, i) => {
      const tile = shotTile(g, { score: g.score, caption: `${i + 1}. ${g.name}`, onclick: () => choose(p.id, s.index, i) });
      tile.dataset.suggestion = i;
      if (i === s.chosen) tile.classList.add("current");
      return tile;
    }));
    return el("div", { class: "tshot" + (s.black ? " black" : ""), "data-target-shot": s.index }, target, chosen, others);
  }));
}

function drawDownloads(p) {
  const links = [];
  for (const [key, label] of [["standalone", "remake MP4"], ["side_by_side", "side-by-side MP4"]]) {
    const r = p.renders[key];
    if (r) links.push(el("a", { href: `/api/projects/${p.id}/files/${r.file}?download=true`, download: r.file }, label));
  }
  if (p.ready) for (const name of ["remake.otio", "remake.edl", "remake.xml"]) {
    links.push(el("a", { href: `/api/projects/${p.id}/files/${name}?download=true`, download: name }, name.split(".")[1].toUpperCase()));
  }
  if (p.ready) {  // CC BY footage must be credited wherever the remake is published
    links.push(el("a", { href: `/api/projects/${p.id}/files/remake.credits.txt?download=true`, download: "remake.credits.txt",
                         title: "Licences and credit lines of the archive footage used" }, "Credits"));
  }
  document.getElementById("downloads").replaceChildren(...links);
}

let swapping = false;  // a double click sends one swap, not two

async function choose(pid, shot, suggestion) {
  if (swapping) return;
  swapping = true;
  let p;
  try {
    p = await postJSON(`/api/projects/${pid}/choose`, { shot, suggestion });
  } finally {
    swapping = false;
  }
  drawTimeline(p);
  drawDownloads(p);
  toast(`shot ${shot + 1}: suggestion ${suggestion + 1} swapped in (saved to remake.otio)`);
  const s = p.shots.find((x) => x.index === shot);
  preview(p, s);
}

function preview(p, s) {
  const box = document.getElementById("preview-box");
  box.classList.remove("hidden");
  document.getElementById("preview-title").textContent = `Shot ${s.index + 1}: target | chosen match`;
  const video = document.getElementById("preview-video");
  // The pair changes with each swap: the chosen shot id in the URL defeats the browser's cache.
  video.src = `/api/projects/${p.id}/shots/${s.index}/preview.mp4?c=${s.shot_id}-${s.chosen}`;
  video.play().catch(() => {});
}

async function render(sideBySide) {
  const pid = current;
  if (!pid) return;
  const buttons = [document.getElementById("render-standalone"), document.getElementById("render-sbs")];
  buttons.forEach((b) => (b.disabled = true));
  try {
    const started = await postJSON(`/api/projects/${pid}/render`, { side_by_side: sideBySide });
    const job = await followJob(started.job, (j) => showProgress(document.getElementById("render-progress"), document.getElementById("render-stage"), j));
    if (current !== pid) return;  // another project is open now
    document.getElementById("render-box").classList.remove("hidden");
    const video = document.getElementById("render-video");
    video.src = `/api/projects/${pid}/files/${job.result.file}?t=${Date.now()}`;
    video.play().catch(() => {});
    drawDownloads(await api(`/api/projects/${pid}`));
  } finally {
    buttons.forEach((b) => (b.disabled = false));
  }
}

document.getElementById("delete-project").addEventListener("click", async () => {
  const pid = current;
  if (!pid || !confirm("Delete this project (its timeline, renders and any uploaded target)?")) return;
  await postJSON(`/api/projects/${pid}/delete`, {});
  current = null;
  history.replaceState(null, "", "/remake");
  document.getElementById("project").classList.add("hidden");
  await loadProjects();
});

document.getElementById("retry").addEventListener("click", async () => {
  const pid = current, button = document.getElementById("retry");
  if (!pid) return;
  button.disabled = true;
  try {
    const started = await postJSON(`/api/projects/${pid}/retry`, {});
    document.getElementById("match-failed").classList.add("hidden");
    const bar = document.getElementById("match-progress"), label = document.getElementById("match-stage");
    await followJob(started.job, (job) => showProgress(bar, label, job)).catch(() => {});
    await loadProjects(pid);
    if (current === pid) await openProject(pid);
  } finally {
    button.disabled = false;
  }
});

document.getElementById("render-standalone").addEventListener("click", () => render(false));
document.getElementById("render-sbs").addEventListener("click", () => render(true));

loadTargets();
loadProjects().then(() => {
  const pid = new URLSearchParams(location.search).get("project");
  if (pid) { document.getElementById("projects").value = pid; openProject(pid); }
});
