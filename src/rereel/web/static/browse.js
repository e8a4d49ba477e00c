// Archive browser: videos and their shots, groups as 3x3 grids, search by words or image, "more like this".
"use strict";

const results = document.getElementById("results"), resultsTitle = document.getElementById("results-title");
const resultsQuery = document.getElementById("results-query"), resultsNote = document.getElementById("results-note");
const resultsShots = document.getElementById("results-shots");
let searches = 0;  // the latest search: a slower, older answer must not replace its results
let queryURL = null;  // the uploaded query image, shown beside its results

function note(message, kind) {
  resultsNote.className = `notice ${kind}`;
  resultsNote.textContent = message;
}

// Start a search: old results go at once, the section comes into view below the sticky header.
async function search(title, failTitle, queryNodes, request) {
  const serial = ++searches;
  results.classList.remove("hidden");
  resultsTitle.textContent = "Searching…";  // the title names the results once they are there
  resultsQuery.replaceChildren(...queryNodes);
  resultsNote.className = "hidden";
  resultsShots.replaceChildren(el("span", { class: "dim" }, `${title.replace(/^Shots like/, "searching for shots like")}…`));
  results.scrollIntoView({ behavior: "smooth", block: "start" });
  let data;
  try {
    data = await request();
  } catch (err) {  // said here, in place of the results, once (no toast as well)
    if (serial !== searches) return;
    resultsTitle.textContent = failTitle;
    resultsShots.replaceChildren();
    note(err.message, "error");
    return;
  }
  if (serial !== searches) return;
  resultsTitle.textContent = title;
  if (data.classes && data.classes.length) resultsQuery.append(el("span", { class: "dim", id: "results-classes" }, "ImageNet classes used: " + data.classes.join(", ")));
  resultsShots.replaceChildren(...data.hits.map((h) => shotTile(h, { score: h.score, onclick: similar })));
  if (!data.hits.length) note("The archive has no shots to show for this.", "info");
  else if (data.hits.every((h) => h.match === "weak")) note("Every match is weak: the archive may hold nothing like this.", "info");
}

function similar(shot) {
  const tc = timecode(shot.start, shot.fps);
  return search(`Shots like #${shot.shot_id} (${shot.name} ${tc})`, `No shots like #${shot.shot_id}`,
    [el("div", { class: "query-tile" }, shotTile(shot, { caption: "query: " + shot.name, time: tc }))],
    () => api(`/api/shots/${shot.shot_id}/similar?top=12`, {}, { quiet: true }));
}

document.getElementById("words").addEventListener("submit", (e) => {
  e.preventDefault();
  const q = document.getElementById("q").value.trim();
  if (!q) return;
  search(`Shots like “${q}”`, `No shots for “${q}”`, [],
    () => api(`/api/search?q=${encodeURIComponent(q)}&top=12`, {}, { quiet: true }));
});

document.getElementById("image").addEventListener("change", (e) => {
  const file = e.target.files[0];
  if (!file) return;
  if (queryURL) URL.revokeObjectURL(queryURL);
  queryURL = URL.createObjectURL(file);
  const shown = el("figure", { class: "shot query-image" }, el("img", { src: queryURL, alt: "query image" }),
    el("figcaption", {}, el("span", { class: "name" }, "query: " + file.name)));
  const form = new FormData();
  form.append("file", file);
  e.target.value = "";  // the same file chosen again searches again
  search(`Shots like ${file.name}`, `No shots for ${file.name}`, [el("div", { class: "query-tile" }, shown)],
    () => api("/api/search?top=12", { method: "POST", body: form }, { quiet: true }));
});

async function loadGroups() {
  const box = document.getElementById("groups");
  try {
    const data = await api("/api/clusters", {}, { quiet: true });
    box.replaceChildren(...data.groups.map((g) => el("div", { class: "panel group" },
      el("div", { class: "dim" }, `group ${g.group} · ${g.size} shots`),
      el("div", { class: "grid3" }, g.shots.map((s) => shotTile(s, { onclick: similar }))))));
  } catch (err) {
    box.replaceChildren(el("div", { class: "notice error" }, err.message));
  }
}

async function loadVideos() {
  const box = document.getElementById("videos");
  let lib;
  try {
    lib = await api("/api/library", {}, { quiet: true });
  } catch (err) {
    box.replaceChildren(el("div", { class: "notice error" }, err.message));
    return;
  }
  box.replaceChildren(...lib.videos.map((v, i) => {
    const shots = el("div", { class: "shots" });
    const block = el("details", { class: "video-block", "data-video": v.id },
      el("summary", {}, el("b", {}, v.name), el("span", { class: "dim" },
        `${v.shots} shot${v.shots === 1 ? "" : "s"} · ${fmt(v.duration)} · ${v.width}×${v.height} · ${+v.fps.toFixed(2)} fps`)), shots);
    let loaded = false;
    block.addEventListener("toggle", async () => {
      if (!block.open || loaded) return;
      loaded = true;
      try {
        const data = await api(`/api/videos/${v.id}/shots`, {}, { quiet: true });
        shots.replaceChildren(...data.shots.map((s) => shotTile(s, { caption: `#${s.index + 1} · ${(s.end - s.start).toFixed(1)} s`, time: timecode(s.start, s.fps), onclick: similar })));
      } catch (err) {
        loaded = false;  // opened again: tried again
        shots.replaceChildren(el("div", { class: "notice error" }, err.message));
      }
    });
    if (i < 3) block.open = true;  // the first few open: something to look at straight away
    return block;
  }));
}

loadVideos();
loadGroups();
