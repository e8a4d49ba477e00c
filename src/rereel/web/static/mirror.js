// Webcam mirror: send a camera frame, wait for the best archive frame, show it, send the next.
"use strict";

const camera = document.getElementById("camera"), grab = document.getElementById("grab");
const layers = [document.getElementById("layer-a"), document.getElementById("layer-b")];
const stats = document.getElementById("stats"), label = document.getElementById("match-label");
const meter = new Meter(), stills = new Meter(10000);  // stills: archive frames loaded, when the match moves
const recent = [];  // the last frames sent, [{blob, time}], for the GIF
let running = true, socket = null, front = 0, match = null, sentAt = 0, shownKey = null;
let inFlight = false;  // one frame at a time: the next goes when this one is answered
// A connection's first answer waits for the server to load the network (seconds): shown on its own,
// not mixed into the round-trip percentiles of the frames that follow.
let firstMs = null, warm = false;

function show(m) {
  // Cross-fade to a new archive frame only when the match moved; preloading avoids a flash of nothing.
  const key = `${m.shot_id}@${m.time.toFixed(1)}`;
  if (key === shownKey) return;
  shownKey = key;
  const next = new Image(), asked = performance.now();
  next.onload = () => {
    stills.tick(performance.now() - asked);
    const back = layers[1 - front];
    back.src = next.src;
    back.style.opacity = 1;
    layers[front].style.opacity = 0;
    front = 1 - front;
  };
  next.src = m.frame;
  label.textContent = `#${m.shot_id} ${m.name} ${timecode(m.time, m.fps)} · ${m.match ? MATCH_WORDS[m.match] + " " : ""}${m.score.toFixed(2)}`;
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

// Every figure from the same frames (the last 3 s): the server's share is part of each round trip.
function showStats() {
  const ms = (x) => `<b>${x.toFixed(0)} ms</b>`;
  const still = stills.times.length ? ` · still p50 ${ms(stills.pct(0.5))}` : "";
  const first = firstMs === null ? "" : ` · first match <b>${(firstMs / 1000).toFixed(1)} s</b>`;
  if (meter.times.length < 2) { stats.innerHTML = `first match <b>${(firstMs / 1000).toFixed(1)} s</b> · measuring…`; return; }
  stats.innerHTML = `<b>${meter.fps.toFixed(1)}</b> frames/s · round trip p50 ${ms(meter.pct(0.5))} p95 ${ms(meter.pct(0.95))}`
    + ` · server p50 ${ms(meter.pct(0.5, "server"))} p95 ${ms(meter.pct(0.95, "server"))}`
    + ` (embed ${meter.pct(0.5, "embed").toFixed(0)}, search ${meter.pct(0.5, "search").toFixed(1)})${still}${first}`;
  Object.assign(stats.dataset, {
    fps: meter.fps.toFixed(2), latency: meter.pct(0.5).toFixed(1), latency95: meter.pct(0.95).toFixed(1),
    server: meter.pct(0.5, "server").toFixed(1), server95: meter.pct(0.95, "server").toFixed(1),
    embed: meter.pct(0.5, "embed").toFixed(1), search: meter.pct(0.5, "search").toFixed(2),
    still: stills.pct(0.5).toFixed(1), frames: String(meter.times.length), first: (firstMs ?? 0).toFixed(1),
  });
}

function connect() {
  socket = new WebSocket(socketURL("/ws/mirror"));
  warm = false;
  socket.onopen = () => { inFlight = false; sendFrame(); };
  socket.onmessage = (event) => {
    inFlight = false;
    const m = JSON.parse(event.data);
    if (m.fatal) { stats.textContent = m.error; running = false; }
    const roundTrip = performance.now() - sentAt;
    if (m.error) { toast(m.error, "error"); } else {
      match = m;
      if (warm) meter.tick(roundTrip, { server: m.server_ms, embed: m.embed_ms, search: m.search_ms });
      else { warm = true; firstMs = roundTrip; }
      show(m);
      document.getElementById("capture").disabled = false;
      showStats();
    }
    sendFrame();
  };
  socket.onclose = (event) => {
    inFlight = false;
    if (event.reason) stats.textContent = `disconnected: ${event.reason}`;
    if (running) setTimeout(connect, 1000);
  };
}

let cameraOn = false;  // frames are sent only from a camera that started (a blank canvas matches nothing)

document.getElementById("toggle").addEventListener("click", (e) => {
  if (!cameraOn) return;  // the page says why (the camera's error); nothing to start
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
    toast("reaction GIF ready", "success");
  } catch (err) {
    // api() has shown the server's reason (a caption the font cannot draw); a failure before any
    // answer (the server gone) is said here
    if (err.status === undefined) toast(`reaction GIF: ${err.message}`, "error");
  } finally {
    e.target.disabled = false;
  }
});

startCamera(camera).then(() => { cameraOn = true; connect(); }).catch((err) => {
  running = false;
  const toggle = document.getElementById("toggle");
  toggle.textContent = "Start";
  toggle.disabled = true;
  toggle.title = "no camera: allow the page to use one, then reload";
  stats.textContent = `camera: ${err.message}`;
  toast(`camera: ${err.message}`, "error");
});
