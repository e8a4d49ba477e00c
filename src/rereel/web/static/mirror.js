// Webcam mirror: send a camera frame, wait for the best archive frame, show it, send the next.
"use strict";

const camera = document.getElementById("camera"), grab = document.getElementById("grab");
const layers = [document.getElementById("layer-a"), document.getElementById("layer-b")];
const stats = document.getElementById("stats"), label = document.getElementById("match-label");
const meter = new Meter();
const recent = [];  // the last frames sent, [{blob, time}], for the GIF
let running = true, socket = null, front = 0, match = null, sentAt = 0, shownKey = null;
let inFlight = false;  // one frame at a time: the next goes when this one is answered

function show(m) {
  // Cross-fade to a new archive frame only when the match moved; preloading avoids a flash of nothing.
  const key = `${m.shot_id}@${m.time.toFixed(1)}`;
  if (key === shownKey) return;
  shownKey = key;
  const next = new Image();
  next.onload = () => {
    const back = layers[1 - front];
    back.src = next.src;
    back.style.opacity = 1;
    layers[front].style.opacity = 0;
    front = 1 - front;
  };
  next.src = m.frame;
  label.textContent = `#${m.shot_id} ${m.name} ${fmt(m.time)} · ${m.score.toFixed(2)}`;
}

async function sendFrame() {
  if (inFlight || !running || !socket || socket.readyState !== WebSocket.OPEN) return;
  inFlight = true;
  const blob = await grabJPEG(camera, grab, 320, 0.8);
  recent.push({ blob, time: performance.now() });
  while (recent.length > 48) recent.shift();
  sentAt = performance.now();
  socket.send(blob);
}

function connect() {
  socket = new WebSocket(socketURL("/ws/mirror"));
  socket.onopen = () => { inFlight = false; sendFrame(); };
  socket.onmessage = (event) => {
    inFlight = false;
    const m = JSON.parse(event.data);
    if (m.fatal) { stats.textContent = m.error; running = false; }
    const roundTrip = performance.now() - sentAt;
    if (m.error) { toast(m.error); } else {
      match = m;
      meter.tick(roundTrip);
      show(m);
      document.getElementById("capture").disabled = false;
      stats.innerHTML = `<b>${meter.fps.toFixed(1)}</b> frames/s · latency p50 <b>${meter.pct(0.5).toFixed(0)} ms</b> p95 <b>${meter.pct(0.95).toFixed(0)} ms</b> · server ${m.server_ms.toFixed(0)} ms (embed ${m.embed_ms.toFixed(0)}, search ${m.search_ms.toFixed(1)})`;
      stats.dataset.fps = meter.fps.toFixed(2);
      stats.dataset.latency = meter.pct(0.5).toFixed(1);
    }
    sendFrame();
  };
  socket.onclose = (event) => {
    inFlight = false;
    if (event.reason) stats.textContent = `disconnected: ${event.reason}`;
    if (running) setTimeout(connect, 1000);
  };
}

document.getElementById("toggle").addEventListener("click", (e) => {
  running = !running;
  e.target.textContent = running ? "Stop" : "Start";
  if (!running) return;
  if (!socket || socket.readyState === WebSocket.CLOSED) connect();
  else sendFrame();
});

document.getElementById("capture").addEventListener("click", async (e) => {
  if (!match || recent.length < 2) return;
  e.target.disabled = true;
  try {
    const frames = recent.slice(-36);
    const fps = Math.min(12, (frames.length - 1) * 1000 / (frames.at(-1).time - frames[0].time));
    const form = new FormData();
    frames.forEach((f, i) => form.append("frames", f.blob, `frame${i}.jpg`));
    form.append("shot", match.shot_id);
    form.append("t", match.time);
    form.append("fps", fps.toFixed(2));
    const caption = document.getElementById("caption").value.trim();
    if (caption) form.append("caption", caption);
    const gif = await api("/api/mirror/gif", { method: "POST", body: form });
    document.getElementById("gif-box").classList.remove("hidden");
    document.getElementById("gif").src = gif.gif;
    const link = document.getElementById("gif-link");
    link.href = gif.gif;
    link.textContent = `download (${(gif.bytes / 1e6).toFixed(2)} MB, ${gif.width}×${gif.height})`;
  } finally {
    e.target.disabled = false;
  }
});

startCamera(camera).then(connect).catch((err) => { stats.textContent = `camera: ${err.message}`; toast(`camera: ${err.message}`); });
