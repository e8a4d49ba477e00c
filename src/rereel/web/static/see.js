// Learning to see, live: each camera frame through the chosen model, smoothed over time.
"use strict";

const camera = document.getElementById("camera"), grab = document.getElementById("grab");
const seen = document.getElementById("seen"), stats = document.getElementById("stats");
const modelSelect = document.getElementById("model"), smooth = document.getElementById("smooth");
const meter = new Meter();
let socket = null, sentAt = 0, serverMs = 0, lastURL = null;

function configure() {
  document.getElementById("smooth-value").textContent = Number(smooth.value).toFixed(2);
  if (socket && socket.readyState === WebSocket.OPEN && modelSelect.value) {
    socket.send(JSON.stringify({ model: modelSelect.value, smooth: Number(smooth.value) }));
  }
}

async function sendFrame() {
  if (!socket || socket.readyState !== WebSocket.OPEN || !modelSelect.value) return;
  const blob = await grabJPEG(camera, grab, Number(document.getElementById("width").value), 0.85);
  sentAt = performance.now();
  socket.send(blob);
}

function connect() {
  sendFrame.started = false;  // a new socket: the first config answer starts the frames again
  socket = new WebSocket(socketURL("/ws/see"));
  socket.binaryType = "blob";
  socket.onopen = configure;
  socket.onmessage = (event) => {
    if (typeof event.data === "string") {
      const m = JSON.parse(event.data);
      if (m.error) { toast(m.error); setTimeout(sendFrame, 500); return; }
      if (m.server_ms !== undefined) { serverMs = m.server_ms; return; }  // the image follows
      document.getElementById("seen-label").textContent = `${m.model} · smoothing ${m.smooth.toFixed(2)}`;
      if (!sendFrame.started) { sendFrame.started = true; sendFrame(); }
      return;
    }
    meter.tick(performance.now() - sentAt);
    if (lastURL) URL.revokeObjectURL(lastURL);
    lastURL = URL.createObjectURL(event.data);
    seen.src = lastURL;
    stats.innerHTML = `<b>${meter.fps.toFixed(1)}</b> frames/s · latency p50 <b>${meter.pct(0.5).toFixed(0)} ms</b> · model ${serverMs.toFixed(0)} ms`;
    stats.dataset.fps = meter.fps.toFixed(2);
    sendFrame();
  };
  socket.onclose = () => setTimeout(connect, 1000);
}

async function loadModels() {
  const data = await api("/api/see/models");
  modelSelect.replaceChildren(...data.models.map((m) => el("option", { value: m.name }, `${m.name} (${m.recipe}, ${m.size}px, step ${m.step ?? "?"})`)));
  if (!data.models.length) {
    modelSelect.append(el("option", { value: "" }, "no models: start the server with --models DIR"));
    stats.textContent = "no learning-to-see model loaded";
  }
}

modelSelect.addEventListener("change", configure);
smooth.addEventListener("input", configure);

loadModels().then(() => startCamera(camera)).then(connect).catch((err) => { stats.textContent = err.message; toast(err.message); });
