// Remake editor: start a remake; watch it in the program monitor (sticky, with a timeline strip
// and J/K/L); per target shot see the chosen match and its suggestions; swap, lock, re-match,
// fill or black out, split and join, undo and redo; render with progress, play and download.
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
  const box = document.getElementById("render-box"), video = document.getElementById("render-video");
  if (!(video.getAttribute("src") || "").includes(`/api/projects/${pid}/`)) {  // another project's render
    video.pause();
    video.removeAttribute("src");
    box.classList.add("hidden");
  }
  document.getElementById("project").classList.remove("hidden");
  document.getElementById("project-title").textContent = `${p.name} · ${p.shots.length} shots`;
  document.getElementById("monitor").classList.toggle("hidden", !p.ready);
  drawTimeline(p);
  drawDownloads(p);
  if (p.matched_with) {  // the re-match fields start from what the shots were matched with
    const ids = { seed: "seed", semantic: "w-semantic", composition: "w-composition", colour: "w-colour" };
    for (const [key, id] of Object.entries(ids)) {
      if (p.matched_with[key] !== undefined) document.getElementById(id).value = +p.matched_with[key].toFixed(3);
    }
  }
  stickyTop();
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

// Scores: the blended similarity (meaning, layout, colour) of a suggestion, about 0..1, in words.
// Thresholds read off a remake of the Tears of Steel clip against the web test library: shots of
// its own film scored 0.95-0.97, the best of other films 0.35-0.58, the rest 0.13-0.45.
// common.js's badge turns "strong" / "fair" / "weak" into words.
function scoreHint(score) {
  if (score === null || score === undefined) return undefined;
  return score >= 0.75 ? "strong" : score >= 0.5 ? "fair" : "weak";
}

let project = null;  // the open project as last described by the server

function drawTimeline(p) {
  project = p;
  const box = document.getElementById("timeline");
  const editable = p.editable;
  box.replaceChildren(...p.shots.map((s) => {
    const filled = s.black && s.chosen !== null && s.chosen !== undefined;
    const actions = el("div", { class: "actions" },
      el("button", { onclick: () => monitor.seek(s.start, true), "data-play": s.index, title: "play the remake from this shot" }, "▶ play"),
      el("button", { onclick: () => edit(`shots/${s.index}/lock`, { locked: !s.locked }), "data-lock": s.index },
        s.locked ? "unlock" : "lock"),
      editable ? el("button", { onclick: () => edit(`shots/${s.index}/more`, {}), "data-more": s.index, title: "five more suggestions from the archive" }, "more") : null,
      editable && s.index < p.shots.length - 1
        ? el("button", { onclick: () => edit(`shots/${s.index}/join`, {}), "data-join": s.index, title: `join with shot ${s.number + 1}` }, "join next") : null,
      s.chosen !== null && s.chosen !== undefined
        ? el("button", { onclick: () => edit(`shots/${s.index}/black`, {}), "data-black": s.index, title: "show black here" }, "set black") : null);
    const target = el("div", { class: "target" },
      el("img", { src: `/api/projects/${p.id}/shots/${s.index}/thumb.jpg?f=${s.start_frame}-${s.end_frame}`, alt: `target shot ${s.number}` }),
      el("div", { class: "tc" }, `#${s.number} ${s.timecode} · ${(s.end - s.start).toFixed(2)} s`),
      actions);
    const chosenShot = s.chosen !== null && s.chosen !== undefined ? s.suggestions[s.chosen] : null;
    const chosen = el("div", { class: "chosen" }, chosenShot
      ? [shotTile(chosenShot, { score: chosenShot.score, hint: scoreHint(chosenShot.score), caption: `${s.chosen + 1}. ${chosenShot.name}` }),
         filled ? el("div", { class: "note dim" }, "filled: black in the target") : null]
      : el("div", { class: "dim note" }, s.black
        ? (s.suggestions.length ? "black in the target: stays black. Click a suggestion to fill it." : "black in the target: stays black")
        : (s.suggestions.length ? "black in the remake: click a suggestion" : "no suggestions yet")));
    const others = el("div", { class: "suggestions" }, s.suggestions.map((g, i) => {
      const tile = shotTile(g, { score: g.score, hint: scoreHint(g.score), caption: `${i + 1}. ${g.name}`, onclick: () => choose(p.id, s.index, i) });
      tile.dataset.suggestion = i;
      if (i === s.chosen) tile.classList.add("current");
      return tile;
    }));
    const cls = "tshot" + (s.black ? " black" : "") + (filled ? " filled" : "") + (s.locked ? " locked" : "")
      + (s.index === monitor.shot ? " current" : "");
    return el("div", { class: cls, "data-target-shot": s.index, "data-number": s.number, "data-timecode": s.timecode }, target, chosen, others);
  }));
  document.getElementById("undo").disabled = !p.history || !p.history.undo;
  document.getElementById("undo").title = p.history && p.history.undo ? `undo: ${p.history.undo} (Ctrl+Z)` : "nothing to undo";
  document.getElementById("redo").disabled = !p.history || !p.history.redo;
  document.getElementById("redo").title = p.history && p.history.redo ? `redo: ${p.history.redo} (Ctrl+Shift+Z)` : "nothing to redo";
  for (const id of ["split", "rematch"]) {
    document.getElementById(id).disabled = !editable;
    if (!editable) document.getElementById(id).title = "this project keeps no analysis of its target (made before the editor could match again)";
  }
  monitor.setShots(p);
}

function drawDownloads(p) {
  const links = [];
  for (const [key, label] of [["standalone", "remake MP4"], ["side_by_side", "side-by-side MP4"]]) {
    const r = p.renders[key];
    // A render made before the last edit still plays and downloads, marked as such.
    if (r) links.push(el("a", { href: `/api/projects/${p.id}/files/${r.file}?download=true`, download: r.file,
                                class: r.stale ? "stale" : "", title: r.stale ? "rendered before the last edit: render again for the edits" : null },
                         r.stale ? `${label} (out of date)` : label));
  }
  const shown = document.getElementById("render-video").getAttribute("src") || "";
  const playing = Object.values(p.renders || {}).find((r) => shown.includes(`/api/projects/${p.id}/files/${r.file}`));
  document.querySelector("#render-box h2").textContent =
    playing && playing.stale ? "Render (out of date: edited since; render again for the edits)" : "Render";
  if (p.ready) for (const name of ["remake.otio", "remake.edl", "remake.xml"]) {
    links.push(el("a", { href: `/api/projects/${p.id}/files/${name}?download=true`, download: name }, name.split(".")[1].toUpperCase()));
  }
  if (p.ready) {  // CC BY footage must be credited wherever the remake is published
    links.push(el("a", { href: `/api/projects/${p.id}/files/remake.credits.txt?download=true`, download: "remake.credits.txt",
                         title: "Licences and credit lines of the archive footage used" }, "Credits"));
  }
  document.getElementById("downloads").replaceChildren(...links);
}

// Every change goes through here: one at a time, the page redrawn from the server's answer.
let editing = false;

async function edit(path, body, label = "working…") {
  const pid = current;
  if (editing || !pid) return null;
  editing = true;
  const status = document.getElementById("mon-status"), was = status.textContent;
  status.textContent = label;
  document.getElementById("project").classList.add("busy");
  let p = null;
  // The version of the remake this page shows: a change made meanwhile in another tab (or by
  // `rereel choose`) may have moved the shots, and the server refuses an edit aimed at it.
  const seen = project && project.id === pid && project.revision ? { "If-Match": `"${project.revision}"` } : {};
  try {
    p = await postJSON(`/api/projects/${pid}/${path}`, body, seen);
  } catch (e) {
    // api() has shown the server's reason. A conflict (the remake changed elsewhere, or a job
    // started on it): show the project as it is now.
    if (e.status === 409 && current === pid) openProject(pid);
    return null;
  } finally {
    editing = false;
    status.textContent = was;
    document.getElementById("project").classList.remove("busy");
  }
  if (current !== pid) return p;
  const before = project;
  drawTimeline(p);
  drawDownloads(p);
  if (p.message) toast(p.message, "success");
  // Show where the change is (an undo after a reload may be far from the view), without playing.
  const key = (s) => s && `${s.start_frame}-${s.end_frame}-${s.shot_id}-${s.chosen}-${s.locked}-${s.suggestions.length}`;
  const changed = p.shots.findIndex((s, i) => !before || key(s) !== key(before.shots[i]));
  if (changed >= 0) { monitor.seek(p.shots[changed].start, false); followRow(changed); }
  return p;
}

async function choose(pid, shot, suggestion) {
  const p = await edit("choose", { shot, suggestion });
  // No autoplay: the monitor moves to the swapped shot and waits (it is always in view).
  const s = p && p.shots.find((x) => x.index === shot);
  if (s) monitor.seek(s.start, false);
}

// -- the program monitor ---------------------------------------------------------------------------
// The remake as it stands, played shot by shot: each shot's pair clip (target | remake, made and
// cached by the server per shot) in one of two <video> elements, the next one loading in the
// other, so a cut swaps elements instead of waiting for a load. Stand-alone shows the right half.
const monitor = {
  shots: [], fps: 24, total: 0, shot: 0, playing: false, rate: 1, reverse: 0, timer: null, warmed: new Set(),
  a: document.getElementById("mon-a"), b: document.getElementById("mon-b"), audio: document.getElementById("mon-audio"),
  get active() { return this.a.classList.contains("on") ? this.a : this.b; },
  get idle() { return this.a.classList.contains("on") ? this.b : this.a; },

  setShots(p) {
    if (this.pid !== p.id) { this.pause(); this.shots = []; }  // another project: from its start
    const t = this.time();
    this.pid = p.id;
    this.shots = p.shots;
    this.fps = p.target ? p.target.fps : 24;
    this.total = p.shots.length ? p.shots[p.shots.length - 1].end : 0;
    // The sound: the remake's soundtrack is the target's, played beside the silent clips.
    const sound = p.target && p.target.has_audio ? `/api/projects/${p.id}/target` : "";
    if (!this.audio.src.endsWith(sound) || !sound) { if (sound) this.audio.src = sound; else this.audio.removeAttribute("src"); }
    if (p.target) document.documentElement.style.setProperty("--ar", (p.target.width / p.target.height).toFixed(4));
    drawStrip();
    // A changed shot has a new clip URL (its frames, choice and archive shot are in it): only it reloads.
    this.seek(Math.min(t, Math.max(0, this.total - 0.01)), this.playing);
  },
  url(s) {
    return `/api/projects/${this.pid}/shots/${s.index}/preview.mp4?c=${s.start_frame}-${s.end_frame}-${s.shot_id}-${s.chosen}`;
  },
  time() {
    const s = this.shots[this.shot];
    if (!s) return 0;
    return s.start + Math.min(this.active.currentTime || 0, s.end - s.start);
  },
  indexAt(t) {  // by frame, as the timecode shown is: a playhead on a cut is in the shot it starts
    const frame = Math.round(t * this.fps);
    const i = this.shots.findIndex((s) => frame < s.end_frame);
    return i < 0 ? this.shots.length - 1 : i;
  },
  // Show shot `i` from `offset` seconds into it.
  load(i, offset, play) {
    const s = this.shots[i];
    if (!s) return;
    const url = this.url(s);
    let video = this.active;
    if (!video.src.endsWith(url)) {
      const other = this.idle;
      if (other.src.endsWith(url)) {  // preloaded: swap at once
        other.classList.add("on");
        video.classList.remove("on");
        video.pause();
        video = other;
      } else {
        video.src = url;
      }
    }
    if (Math.abs(video.currentTime - offset) > 0.02) video.currentTime = offset;
    video.playbackRate = this.rate;
    if (play) video.play().catch(() => {}); else video.pause();
    const changed = this.shot !== i;
    this.shot = i;
    const next = this.shots[i + 1];
    if (next && !this.idle.src.endsWith(this.url(next))) { this.idle.src = this.url(next); this.idle.load(); }
    // While playing, have the server make the clip after that too: a short shot leaves little time.
    const after = this.shots[i + 2];
    if (play && after && !this.warmed.has(this.url(after))) {
      this.warmed.add(this.url(after));
      fetch(this.url(after)).then((r) => r.blob()).catch(() => this.warmed.delete(this.url(after)));
    }
    if (changed) followRow(i);
  },
  seek(t, play = this.playing) {
    if (!this.shots.length) return;
    t = Math.max(0, Math.min(t, this.total - 1e-3));
    const i = this.indexAt(t);
    this.playing = play;
    this.load(i, t - this.shots[i].start, play);
    drawPlayhead();
  },
  play() { this.stopReverse(); this.rate = 1; this.seek(this.time() >= this.total - 0.05 ? 0 : this.time(), true); },
  pause() { this.stopReverse(); this.playing = false; this.rate = 1; this.active.pause(); this.active.playbackRate = 1; drawPlayhead(); },
  forward() {  // L: play; again: faster (2x, 4x)
    if (this.reverse || !this.playing) { this.stopReverse(); this.rate = 1; this.seek(this.time(), true); return; }
    this.rate = Math.min(4, this.rate * 2);
    this.active.playbackRate = this.rate;
  },
  backward() {  // J: browsers play no video backwards, so step back ten times a second; again: faster
    this.active.pause();
    this.playing = false;
    this.reverse = this.reverse ? Math.min(4, this.reverse * 2) : 1;
    clearInterval(this.timer);
    this.timer = setInterval(() => {
      const t = this.time() - 0.1 * this.reverse;
      if (t <= 0) { this.seek(0, false); this.stopReverse(); return; }
      this.seek(t, false);
    }, 100);
  },
  stopReverse() { clearInterval(this.timer); this.timer = null; this.reverse = 0; },
  step(dir) {  // the arrows: the start of the next shot, or of this one (or the one before)
    const s = this.shots[this.shot];
    if (!s) return;
    if (dir > 0) { if (this.shot + 1 < this.shots.length) this.seek(this.shots[this.shot + 1].start); return; }
    const into = this.time() - s.start;
    this.seek(into > 0.3 || this.shot === 0 ? s.start : this.shots[this.shot - 1].start);
  },
  // Called every animation frame: the playhead, and the cut to the next shot at its clip's end.
  sound() {  // follow the picture: play while it plays (and is not waiting), re-cue when it drifts
    const a = this.audio;
    if (!a.src) return;
    const v = this.active, on = this.playing && !v.paused && v.readyState >= 3;
    if (!on) { if (!a.paused) a.pause(); return; }
    a.playbackRate = this.rate;
    if (Math.abs(a.currentTime - this.time()) > 0.15) a.currentTime = this.time();
    if (a.paused) a.play().catch(() => {});
  },
  tick() {
    this.sound();
    const s = this.shots[this.shot];
    if (s && this.playing) {
      const v = this.active;
      if (v.ended || v.currentTime >= s.end - s.start - 0.02) {
        if (this.shot + 1 < this.shots.length) this.load(this.shot + 1, 0, true);
        else { this.playing = false; v.pause(); }
      }
    }
    drawPlayhead();
    requestAnimationFrame(() => this.tick());
  },
};

function frameTimecode(frame, fps) {  // HH:MM:SS:FF non-drop, as the server (rereel.timeline.timecode) writes it
  const r = Math.max(1, Math.round(fps)), f = frame % r, s = Math.floor(frame / r);
  const two = (n) => String(n).padStart(2, "0");
  return `${two(Math.floor(s / 3600))}:${two(Math.floor(s / 60) % 60)}:${two(s % 60)}:${two(f)}`;
}

function drawStrip() {
  const strip = document.getElementById("strip");
  const total = monitor.total || 1;
  const segs = monitor.shots.map((s) => el("div", {
    class: "seg" + (s.black && (s.chosen === null || s.chosen === undefined) ? " black" : "") + (s.black && s.chosen !== null && s.chosen !== undefined ? " filled" : "")
      + (s.locked ? " locked" : ""),
    style: `width:${(100 * (s.end - s.start) / total).toFixed(4)}%`, "data-index": s.index,
    title: `#${s.number} ${s.timecode} · ${(s.end - s.start).toFixed(2)} s`,
  }, `#${s.number}`));
  strip.replaceChildren(document.getElementById("playhead") || el("div", { class: "playhead", id: "playhead" }), ...segs);
  shownShot = -1;  // new segments: mark the current one again
}

let shownShot = -1;

function drawPlayhead() {
  const t = monitor.time(), total = monitor.total || 1;
  document.getElementById("playhead").style.left = `${(100 * t / total).toFixed(3)}%`;
  const box = document.getElementById("monitor");
  box.dataset.time = t.toFixed(3);
  box.dataset.shot = monitor.shot;
  const s = monitor.shots[monitor.shot];
  const frame = Math.round(t * monitor.fps);
  document.getElementById("mon-tc").textContent = s ? `#${s.number} ${frameTimecode(frame, monitor.fps)}` : "";
  document.getElementById("play").textContent = monitor.playing ? "❚❚ Pause" : "▶ Play";
  if (shownShot !== monitor.shot) {
    shownShot = monitor.shot;
    for (const seg of document.querySelectorAll("#strip .seg")) seg.classList.toggle("current", Number(seg.dataset.index) === monitor.shot);
  }
}

function followRow(i) {
  for (const row of document.querySelectorAll(".tshot.current")) row.classList.remove("current");
  const row = document.querySelector(`.tshot[data-target-shot='${i}']`);
  if (!row) return;
  row.classList.add("current");
  const stick = document.getElementById("monitor").getBoundingClientRect().bottom + 8;
  document.documentElement.style.setProperty("--stick", `${Math.round(stick)}px`);
  const r = row.getBoundingClientRect();
  if (r.top < stick || r.bottom > window.innerHeight) row.scrollIntoView({ block: "start" });
}

document.getElementById("strip").addEventListener("click", (e) => {
  const r = e.currentTarget.getBoundingClientRect();
  monitor.seek((e.clientX - r.left) / r.width * monitor.total);
});
document.getElementById("play").addEventListener("click", () => (monitor.playing ? monitor.pause() : monitor.play()));
document.getElementById("screen").addEventListener("click", () => (monitor.playing ? monitor.pause() : monitor.play()));
document.getElementById("mon-sbs").addEventListener("change", (e) => document.getElementById("monitor").classList.toggle("sbs", e.target.checked));
document.getElementById("undo").addEventListener("click", () => edit("undo", {}));
document.getElementById("redo").addEventListener("click", () => edit("redo", {}));
document.getElementById("split").addEventListener("click", () => {
  const frame = Math.round(monitor.time() * monitor.fps);
  edit("split", { frame }, "splitting and matching the two pieces…");
});
document.getElementById("rematch").addEventListener("click", () => {
  const num = (id) => Number(document.getElementById(id).value);
  edit("rematch", { seed: Math.trunc(num("seed")), semantic: num("w-semantic"), composition: num("w-composition"), colour: num("w-colour") },
    "re-matching the unlocked shots…");
});

document.addEventListener("keydown", (e) => {
  if (!current || !monitor.shots.length) return;
  if (e.target.closest("input:not([type=checkbox]), select, textarea")) return;  // typing a seed, not playing
  const key = e.key.toLowerCase();
  if ((e.ctrlKey || e.metaKey) && key === "z") { e.preventDefault(); edit(e.shiftKey ? "redo" : "undo", {}); return; }
  if ((e.ctrlKey || e.metaKey) && key === "y") { e.preventDefault(); edit("redo", {}); return; }
  if (e.ctrlKey || e.metaKey || e.altKey) return;
  const actions = {
    " ": () => (monitor.playing ? monitor.pause() : monitor.play()),
    k: () => monitor.pause(), l: () => monitor.forward(), j: () => monitor.backward(),
    arrowright: () => monitor.step(1), arrowleft: () => monitor.step(-1),
  };
  if (actions[key]) { e.preventDefault(); actions[key](); }
});

// A clicked button keeps the focus, and Space would press it again: give the keys back to the monitor.
document.getElementById("project").addEventListener("click", (e) => {
  const control = e.target.closest("button, input[type=checkbox]");
  if (control) control.blur();
});

function stickyTop() {  // the monitor sits under the page's sticky header, whatever its height
  const header = document.querySelector("header");
  if (header) document.documentElement.style.setProperty("--header", `${header.offsetHeight}px`);
}
window.addEventListener("resize", stickyTop);
requestAnimationFrame(() => { stickyTop(); monitor.tick(); });

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
