// Learning to see, live: each camera frame through the chosen model, smoothed over time.
"use strict";

const camera = document.getElementById("camera"), grab = document.getElementById("grab");
const seen = document.getElementById("seen"), stats = document.getElementById("stats");
const modelSelect = document.getElementById("model"), smooth = document.getElementById("smooth");
const meter = new Meter();
let socket = null, sentAt = 0, serverMs = 0, lastURL = null;
// Frames go only once the server has answered every control message sent (the model chosen is
// loaded): a model that cannot be loaded is said, and stays said, not followed by a frame every
// half second each refused. The server marks its answers to control messages ("control").
let pending = 0, configured = false, stalled = false;  // stalled: a frame was due while a model loaded
const UNUSABLE = " · cannot be loaded";

function configure() {
  document.getElementById("smooth-value").textContent = Number(smooth.value).toFixed(2);
  if (socket && socket.readyState === WebSocket.OPEN && modelSelect.value) {
    pending++;
    configured = false;
    socket.send(JSON.stringify({ model: modelSelect.value, smooth: Number(smooth.value) }));
  }
}

function markModel(name, usable) {
  const option = [...modelSelect.options].find((o) => o.value === name);
  if (!option) return;
  option.textContent = option.textContent.replace(UNUSABLE, "") + (usable ? "" : UNUSABLE);
}

function controlAnswer(m) {
  pending = Math.max(0, pending - 1);
  if (m.error) {  // the model asked for cannot be loaded (or the message was refused): say so where it stays
    stats.textContent = m.error;
    toast(m.error, "error");
    if (m.asked) markModel(m.asked, false);
    return;
  }
  markModel(m.model, true);  // loads now (a checkpoint caught mid-write by training, say)
  document.getElementById("seen-label").textContent = `${m.model} · smoothing ${m.smooth.toFixed(2)}`;
  configured = pending === 0;
  if (configured && (!sendFrame.started || stalled)) { sendFrame.started = true; stalled = false; sendFrame(); }
}

async function sendFrame() {
  if (!socket || socket.readyState !== WebSocket.OPEN || !modelSelect.value) return;
  if (!configured) { stalled = true; return; }
  const blob = await grabJPEG(camera, grab, Number(document.getElementById("width").value), 0.85);
  sentAt = performance.now();
  socket.send(blob);
}

function connect() {
  sendFrame.started = false;  // a new socket: the first config answer starts the frames again
  pending = 0;
  configured = false;
  socket = new WebSocket(socketURL("/ws/see"));
  socket.binaryType = "blob";
  socket.onopen = configure;
  socket.onmessage = (event) => {
    if (typeof event.data === "string") {
      const m = JSON.parse(event.data);
      if (m.control) { controlAnswer(m); return; }
      if (m.error) { toast(m.error, "error"); setTimeout(sendFrame, 500); return; }  // this frame's: the next
      serverMs = m.server_ms;  // the image follows
      return;
    }
    meter.tick(performance.now() - sentAt, { server: serverMs });
    if (lastURL) URL.revokeObjectURL(lastURL);
    lastURL = URL.createObjectURL(event.data);
    seen.src = lastURL;
    // Both from the same frames: the model's time is part of each round trip.
    stats.innerHTML = `<b>${meter.fps.toFixed(1)}</b> frames/s · round trip p50 <b>${meter.pct(0.5).toFixed(0)} ms</b> · model p50 <b>${meter.pct(0.5, "server").toFixed(0)} ms</b>`;
    stats.dataset.fps = meter.fps.toFixed(2);
    sendFrame();
  };
  socket.onclose = () => setTimeout(connect, 1000);
}

// No model: say how to make one, at the top, and leave the camera alone (nothing to show it to).
function noModel(data) {
  const models = data.folders.length ? data.folders[0] : "models";
  const where = data.folders.length
    ? `No learning-to-see model in ${data.folders.join(", ")} (a model is a folder holding config.json and checkpoint.pt).`
    : "No learning-to-see model: the server was started without --models.";
  // The folders are read on each request: a model trained into one shows up on a reload.
  const then = data.folders.length ? "then reload this page:" : "then restart the server with its folder:";
  const serve = data.folders.length ? "" : `\nrereel serve --library ${data.library} --models ${models}`;
  document.getElementById("no-model").replaceChildren(
    el("b", {}, where), el("div", {}, `Train one on footage of one kind of thing (photos, videos, or folders of them), ${then}`),
    el("pre", { id: "train-command" }, `rereel see train PHOTOS_OR_VIDEOS... --model ${models}/NAME${serve}`),
    el("div", { class: "dim" }, "--steps sets how long it trains (default 10000); the model is saved every 1000 steps, so it can be tried before the end."));
  document.getElementById("no-model").classList.remove("hidden");
  for (const id of ["controls", "panes", "see-note"]) document.getElementById(id).classList.add("hidden");
}

async function loadModels() {
  const data = await api("/api/see/models");
  modelSelect.replaceChildren(...data.models.map((m) => el("option", { value: m.name }, `${m.name} (${m.recipe}, ${m.size}px, step ${m.step ?? "?"})`)));
  if (!data.models.length) noModel(data);
  return data.models.length > 0;
}

modelSelect.addEventListener("change", configure);
smooth.addEventListener("input", configure);

loadModels().then(async (any) => {
  if (!any) return;
  await startCamera(camera);
  connect();
}).catch((err) => { stats.textContent = err.message; toast(err.message, "error"); });
