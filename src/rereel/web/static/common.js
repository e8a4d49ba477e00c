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
  document.body.prepend(el("header", {}, el("span", { class: "brand" }, "rereel"), nav, info));
  document.body.append(el("div", { id: "toast", class: "hidden" }));
  api("/api/library").then((lib) => {
    info.textContent = `${lib.videos.length} videos · ${lib.shots} shots · ${Math.round(lib.seconds / 60)} min · ${lib.encoder}`;
  }).catch(() => {});
}

function toast(message) {
  const t = document.getElementById("toast");
  t.textContent = message;
  t.classList.remove("hidden");
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => t.classList.add("hidden"), 6000);
}

// fetch + JSON, with the server's one-line error as the exception message (and a toast).
async function api(url, options = {}) {
  const res = await fetch(url, { credentials: "same-origin", ...options });
  const type = res.headers.get("content-type") || "";
  const body = type.includes("json") ? await res.json() : await res.text();
  if (!res.ok) {
    const detail = !body || !body.detail ? String(body)
      : typeof body.detail === "string" ? body.detail
      // A request FastAPI could not validate: [{loc: ["body", "shot"], msg}] -> "shot: msg".
      : Array.isArray(body.detail) ? body.detail.map((e) => `${(e.loc || []).slice(1).join(".")}: ${e.msg}`).join("; ")
      : JSON.stringify(body.detail);
    toast(detail);
    throw new Error(detail);
  }
  return body;
}

function postJSON(url, data) {
  return api(url, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(data) });
}

function fmt(seconds) {
  const m = Math.floor(seconds / 60), s = seconds - 60 * m;
  return `${m}:${s.toFixed(1).padStart(4, "0")}`;
}

// A shot tile: its thumbnail, and its preview playing while the pointer is over it.
function shotTile(shot, { caption = null, onclick = null, score = null } = {}) {
  const img = el("img", { src: `/api/shots/${shot.shot_id}/thumb.jpg`, alt: `shot ${shot.shot_id}`, loading: "lazy" });
  const tile = el("figure", { class: "shot", "data-shot": shot.shot_id, title: `#${shot.shot_id} ${shot.name} ${fmt(shot.start)}–${fmt(shot.end)}` }, img);
  if (score !== null) tile.append(el("span", { class: "score" }, score.toFixed(2)));
  tile.append(el("figcaption", {}, caption ?? `${shot.name} ${fmt(shot.start)}`));
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
    if (job.state === "failed") { toast(job.error); throw new Error(job.error); }
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

// Rolling figures for the live pages: frames/s over the last few seconds and latency percentiles.
class Meter {
  constructor(span = 3000) { this.span = span; this.times = []; this.lat = []; }
  tick(latencyMs) {
    const now = performance.now();
    this.times.push(now); this.lat.push(latencyMs);
    while (this.times.length && now - this.times[0] > this.span) { this.times.shift(); this.lat.shift(); }
  }
  get fps() { return this.times.length > 1 ? (this.times.length - 1) * 1000 / (this.times.at(-1) - this.times[0]) : 0; }
  pct(p) {
    if (!this.lat.length) return 0;
    const s = [...this.lat].sort((a, b) => a - b);
    return s[Math.min(s.length - 1, Math.floor(p * s.length))];
  }
}

document.addEventListener("DOMContentLoaded", header);
