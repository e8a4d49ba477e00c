// Shared by every page: the header, JSON calls, shot tiles that play on hover, job progress, the camera.
"use strict";

const PAGES = [["/", "Archive"], ["/remake", "Remake"], ["/mirror", "Mirror"], ["/see", "Learning to see"]];

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (v !== null && v !== undefined && v !== false) node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined) node.append(c);
  return node;
}

function header() {
  const here = location.pathname;
  const nav = el("nav", {}, PAGES.map(([href, name]) => el("a", { href, class: href === here ? "here" : "" }, name)));
  const info = el("span", { class: "info", id: "libinfo" });
  const bar = el("header", {}, el("span", { class: "brand" }, "rereel"), nav, info);
  document.body.prepend(bar);
  toastBox();
  // The header is sticky: whatever a page scrolls into view must land below it, not under it.
  document.documentElement.style.scrollPaddingTop = `${bar.offsetHeight + 8}px`;
  api("/api/library", {}, { quiet: true }).then((lib) => {
    info.textContent = `${lib.videos.length} videos · ${lib.shots} shots · ${Math.round(lib.seconds / 60)} min · ${lib.encoder}`;
  }).catch(() => {});
}

function toastBox() {
  let t = document.getElementById("toast");
  if (!t) {
    t = el("div", { id: "toast", class: "hidden" });
    t.addEventListener("click", () => t.classList.add("hidden"));  // read it, click it away
    document.body.append(t);
  }
  return t;
}

// One look per kind on every page: "error" (red, 6 s: there is something to read and act on),
// "success" (green) and "info" (neutral), 3 s. A click dismisses it.
function toast(message, kind = "info") {
  const t = toastBox();
  t.textContent = message;
  t.className = `toast-${kind}`;
  t.setAttribute("role", kind === "error" ? "alert" : "status");
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => t.classList.add("hidden"), kind === "error" ? 6000 : 3000);
}

// fetch + JSON, with the server's one-line error as the exception message (and an error toast,
// unless `quiet`: a page that shows the error in place says it once).
async function api(url, options = {}, { quiet = false } = {}) {
  const res = await fetch(url, { credentials: "same-origin", ...options });
  const type = res.headers.get("content-type") || "";
  const body = type.includes("json") ? await res.json() : await res.text();
  if (!res.ok) {
    const detail = !body || !body.detail ? String(body)
      : typeof body.detail === "string" ? body.detail
      // A request FastAPI could not validate: [{loc: ["body", "shot"], msg}] -> "shot: msg".
      : Array.isArray(body.detail) ? body.detail.map((e) => `${(e.loc || []).slice(1).join(".")}: ${e.msg}`).join("; ")
      : JSON.stringify(body.detail);
    if (!quiet) toast(detail, "error");
    throw Object.assign(new Error(detail), { status: res.status });
  }
  return body;
}

function postJSON(url, data, headers = {}) {
  return api(url, { method: "POST", headers: { "Content-Type": "application/json", ...headers }, body: JSON.stringify(data) });
}

// m:ss.s, for lengths (a video's duration); positions in footage are written as timecode.
function fmt(seconds) {
  const m = Math.floor(seconds / 60), s = seconds - 60 * m;
  return `${m}:${s.toFixed(1).padStart(4, "0")}`;
}

// HH:MM:SS:FF, non-drop, of the frame at `seconds`, counted at the clip's nearest whole rate: the
// one numbering the remake page, OTIO and EDL use (rereel.timeline.timecode). No rate known: m:ss.s.
function timecode(seconds, fps) {
  if (!(fps > 0)) return fmt(seconds);
  const rate = Math.max(1, Math.round(fps)), frames = Math.round(seconds * fps);
  const f = frames % rate, s = Math.floor(frames / rate), two = (n) => String(n).padStart(2, "0");
  return `${two(Math.floor(s / 3600))}:${two(Math.floor(s / 60) % 60)}:${two(s % 60)}:${two(f)}`;
}

// A score in plain words beside the number: the server says how strong it is (web/archive.py,
// MATCH_HINTS, measured per kind of score); a score without a hint shows the number alone.
const MATCH_WORDS = { strong: "strong match", fair: "fair match", weak: "weak match" };

function scoreBadge(score, hint = null) {
  const words = MATCH_WORDS[hint];
  score = Math.abs(score) < 0.005 ? 0 : score;  // "0.00", not "-0.00"
  return el("span", { class: `score${words ? " match-" + hint : ""}`, "data-match": hint || null,
                      title: words ? `${words} (score ${score.toFixed(2)})` : `score ${score.toFixed(2)}` },
            words ? `${words} · ${score.toFixed(2)}` : score.toFixed(2));
}

// A shot tile: its thumbnail, and its preview playing while the pointer is over it. Its caption is
// `caption` (default: the video's name) and `time` (default: the shot's start as timecode); the name
// gives way to the time when space is short. `hint` defaults to the shot's own `match`.
function shotTile(shot, { caption = null, time = undefined, onclick = null, score = null, hint = undefined } = {}) {
  const img = el("img", { src: `/api/shots/${shot.shot_id}/thumb.jpg`, alt: `shot ${shot.shot_id}`, loading: "lazy" });
  const span = `${timecode(shot.start, shot.fps)}–${timecode(shot.end, shot.fps)}`;
  const tile = el("figure", { class: "shot", "data-shot": shot.shot_id, title: `#${shot.shot_id} ${shot.name} ${span}` }, img);
  if (score !== null) tile.append(scoreBadge(score, hint === undefined ? shot.match : hint));
  if (time === undefined) time = caption === null ? timecode(shot.start, shot.fps) : null;
  tile.append(el("figcaption", {}, el("span", { class: "name" }, caption ?? shot.name),
                 time ? el("span", { class: "tc" }, time) : null));
  let video = null, timer = null;
  tile.addEventListener("mouseenter", () => {
    // A short wait: sweeping the pointer across a grid should not start a preview encode per tile.
    timer = setTimeout(() => {
      video = el("video", { src: `/api/shots/${shot.shot_id}/preview.mp4`, muted: true, loop: true, playsinline: true, autoplay: true });
      video.muted = true;
      tile.insertBefore(video, img.nextSibling);
    }, 250);
  });
  tile.addEventListener("mouseleave", () => {
    clearTimeout(timer);
    if (video) { video.pause(); video.remove(); video = null; }
  });
  if (onclick) tile.addEventListener("click", () => onclick(shot));
  return tile;
}

// Poll a job until it ends; `onProgress(job)` on each poll. Resolves with the finished job.
async function followJob(jobId, onProgress) {
  for (;;) {
    const job = await api(`/api/jobs/${jobId}`);
    onProgress(job);
    if (job.state === "done") return job;
    if (job.state === "failed") { toast(job.error, "error"); throw new Error(job.error); }
    await new Promise((r) => setTimeout(r, 400));
  }
}

// The webcam, as a <video>, and a way to grab its current frame as a JPEG Blob `width` wide.
async function startCamera(video) {
  const stream = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 }, audio: false });
  video.srcObject = stream;
  video.muted = true;
  await video.play();
  return stream;
}

function grabJPEG(video, canvas, width = 320, quality = 0.8) {
  const w = width, h = Math.round(width * (video.videoHeight || 3) / (video.videoWidth || 4));
  canvas.width = w; canvas.height = h;
  canvas.getContext("2d").drawImage(video, 0, 0, w, h);
  return new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", quality));
}

function socketURL(path) {
  return `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}${path}`;
}

// Rolling figures for the live pages, over the last few seconds: frames/s and percentiles of each
// frame's round trip ("latency") and of named parts of that same frame (e.g. "server"). A part is
// inside its frame's round trip, so its percentile is never above the round trip's.
class Meter {
  constructor(span = 3000) { this.span = span; this.times = []; this.values = { latency: [] }; }
  tick(latencyMs, parts = {}) {  // give the same parts on every tick
    const now = performance.now();
    this.times.push(now);
    for (const [k, v] of Object.entries({ latency: latencyMs, ...parts })) (this.values[k] ??= []).push(v);
    while (this.times.length && now - this.times[0] > this.span) {
      this.times.shift();
      for (const v of Object.values(this.values)) v.shift();
    }
  }
  get fps() { return this.times.length > 1 ? (this.times.length - 1) * 1000 / (this.times.at(-1) - this.times[0]) : 0; }
  pct(p, name = "latency") {
    const values = this.values[name] || [];
    if (!values.length) return 0;
    const s = [...values].sort((a, b) => a - b);
    return s[Math.min(s.length - 1, Math.floor(p * s.length))];
  }
}

document.addEventListener("DOMContentLoaded", header);
