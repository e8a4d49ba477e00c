// Archive browser: videos and their shots, groups as 3x3 grids, search by words or image, "more like this".
"use strict";

function showResults(title, data, queryShot = null) {
  document.getElementById("results").classList.remove("hidden");
  document.getElementById("results-title").textContent = title;
  const q = document.getElementById("results-query");
  q.replaceChildren();
  if (queryShot) q.append(el("div", { style: "width:200px" }, shotTile(queryShot, { caption: "query: " + queryShot.name })));
  if (data.classes && data.classes.length) q.append(el("span", { class: "dim" }, "ImageNet classes used: " + data.classes.join(", ")));
  const grid = document.getElementById("results-shots");
  grid.replaceChildren(...data.hits.map((h) => shotTile(h, { score: h.score, onclick: similar })));
  document.getElementById("results").scrollIntoView({ behavior: "smooth" });
}

async function similar(shot) {
  const data = await api(`/api/shots/${shot.shot_id}/similar?top=12`);
  showResults(`Shots like #${shot.shot_id} (${shot.name} ${fmt(shot.start)})`, data, data.query);
}

document.getElementById("words").addEventListener("submit", async (e) => {
  e.preventDefault();
  const q = document.getElementById("q").value.trim();
  if (!q) return;
  const data = await api(`/api/search?q=${encodeURIComponent(q)}&top=12`);
  showResults(`Shots like “${q}”`, data);
});

document.getElementById("image").addEventListener("change", async (e) => {
  const file = e.target.files[0];
  if (!file) return;
  const form = new FormData();
  form.append("file", file);
  const data = await api("/api/search?top=12", { method: "POST", body: form });
  showResults(`Shots like ${file.name}`, data);
});

async function loadGroups() {
  const box = document.getElementById("groups");
  try {
    const data = await api("/api/clusters");
    box.replaceChildren(...data.groups.map((g) => el("div", { class: "panel group" },
      el("div", { class: "dim" }, `group ${g.group} · ${g.size} shots`),
      el("div", { class: "grid3" }, g.shots.map((s) => shotTile(s, { onclick: similar }))))));
  } catch (err) {
    box.replaceChildren(el("span", { class: "error" }, err.message));
  }
}

async function loadVideos() {
  const lib = await api("/api/library");
  const box = document.getElementById("videos");
  box.replaceChildren(...lib.videos.map((v, i) => {
    const shots = el("div", { class: "shots" });
    const block = el("details", { class: "video-block", "data-video": v.id },
      el("summary", {}, el("b", {}, v.name), el("span", { class: "dim" }, `${v.shots} shot${v.shots === 1 ? "" : "s"} · ${fmt(v.duration)} · ${v.width}×${v.height}`)), shots);
    let loaded = false;
    block.addEventListener("toggle", async () => {
      if (!block.open || loaded) return;
      loaded = true;
      const data = await api(`/api/videos/${v.id}/shots`);
      shots.replaceChildren(...data.shots.map((s) => shotTile(s, { caption: `#${s.index + 1} ${fmt(s.start)}–${fmt(s.end)}`, onclick: similar })));
    });
    if (i < 3) block.open = true;  // the first few open: something to look at straight away
    return block;
  }));
}

loadVideos();
loadGroups();
