// mien's page: send a photo or camera frames to /v1/analyze and draw what comes back.
// No build step and nothing from other hosts; the server's Content-Security-Policy says so.
"use strict";

const BOX = "rgb(40, 220, 90)";
const CAMERA_SIDE = 640; // frames are scaled to at most this before upload
const $ = (id) => document.getElementById(id);

const state = { result: null, file: "", camera: null, busy: false, labels: [] };
window.mien = state; // the page's last answer, for scripts and tests

function apiHeaders(extra) {
  const headers = Object.assign({}, extra);
  const key = $("key").value || sessionStorage.getItem("mien-key");
  if (key) headers["X-API-Key"] = key;
  return headers;
}

async function analyze(blob, name) {
  const form = new FormData();
  form.append("file", blob, name);
  const params = new URLSearchParams();
  if ($("annotate").checked) params.set("annotate", "1");
  if ($("min-confidence").value !== "") params.set("min_confidence", $("min-confidence").value);
  const query = params.toString() ? `?${params}` : "";
  const response = await fetch("/v1/analyze" + query, { method: "POST", body: form, headers: apiHeaders() });
  const body = await response.json().catch(() => ({ error: "bad_response", detail: response.statusText }));
  if (response.status === 401) $("key-box").hidden = false;
  if (!response.ok) throw new Error(`${response.status} ${body.error}: ${body.detail}`);
  if ($("key").value) sessionStorage.setItem("mien-key", $("key").value);
  return body;
}

// What a face's caption shows for an attribute: the winning label and its probability, or for
// an answer under the minimum confidence "<name> uncertain" (mien.inference.draw.shown_value).
function shown(name, prediction) {
  const unsure = prediction.label === "uncertain";
  return [unsure ? `${name} uncertain` : prediction.label, prediction.score];
}

// One part per attribute, the first led by the face's number in the table ("#1 happy 0.93").
function captionParts(face, i) {
  const parts = Object.entries(face.attributes).map(([name, pred]) => {
    const [label, value] = shown(name, pred);
    return `${label} ${value.toFixed(2)}`;
  });
  return [[`#${i + 1}`, ...parts.slice(0, 1)].join(" "), ...parts.slice(1)];
}

// Boxes, landmarks and captions on `ctx`, with result pixels scaled by `scale`; captions are
// placed by labels.js so none leaves the canvas or covers another.
function drawFaces(ctx, faces, scale) {
  const { width, height } = ctx.canvas;
  const boxes = faces.map(({ box: b }) => ({ x1: b.x1 * scale, y1: b.y1 * scale, x2: b.x2 * scale, y2: b.y2 * scale }));
  ctx.lineWidth = Math.max(2, Math.round(fontSize(width, height) / 8));
  ctx.strokeStyle = ctx.fillStyle = BOX;
  boxes.forEach((b, i) => {
    ctx.strokeRect(b.x1, b.y1, b.x2 - b.x1, b.y2 - b.y1);
    for (const [px, py] of faces[i].landmarks) {
      ctx.beginPath();
      ctx.arc(px * scale, py * scale, ctx.lineWidth, 0, 2 * Math.PI);
      ctx.fill();
    }
  });
  const font = (size) => `${size}px system-ui, sans-serif`;
  const measureFor = (size) => { ctx.font = font(size); return (text) => ctx.measureText(text).width; };
  const placed = placeCaptions(boxes, faces.map(captionParts), measureFor, width, height);
  ctx.font = font(placed.size);
  ctx.textBaseline = "top";
  const pad = padding(placed.size), step = lineHeight(placed.size);
  placed.rects.forEach((rect, i) => {
    const line = leader(boxes[i], rect);
    ctx.fillStyle = BOX;
    if (line) {
      ctx.beginPath();
      ctx.moveTo(...line[0]);
      ctx.lineTo(...line[1]);
      ctx.stroke();
    }
    ctx.fillRect(rect.x1, rect.y1, rect.x2 - rect.x1, rect.y2 - rect.y1);
    ctx.fillStyle = "#fff";
    placed.lines[i].forEach((row, k) => ctx.fillText(row, rect.x1 + pad, rect.y1 + pad + k * step));
  });
  ctx.canvas.dataset.faces = String(faces.length);
  state.labels = placed.rects; // for scripts and tests: where each face's caption went
}

function loadImage(src) {
  return new Promise((resolve, reject) => {
    const img = new Image();
    img.onload = () => resolve(img);
    img.onerror = () => reject(new Error("the browser cannot show this image"));
    img.src = src;
  });
}

async function showPhoto(file) {
  stopCamera();
  setStatus(`analyzing ${file.name}…`);
  document.body.dataset.state = "busy";
  try {
    const result = await analyze(file, file.name);
    const src = result.annotated
      ? `data:${result.annotated.media_type};base64,${result.annotated.base64}`
      : URL.createObjectURL(file);
    const img = await loadImage(src);
    const canvas = $("canvas");
    canvas.width = result.image.width;  // the server's pixels, EXIF rotation applied
    canvas.height = result.image.height;
    const ctx = canvas.getContext("2d");
    ctx.drawImage(img, 0, 0, canvas.width, canvas.height);
    if (!result.annotated) drawFaces(ctx, result.faces, 1);
    else canvas.dataset.faces = String(result.faces.length);
    state.file = file.name;
    showResult(result);
    setStatus(`${file.name}: ${plural(result.faces.length, "face")} in ${result.elapsed_ms.toFixed(0)} ms (${result.detector})`);
    document.body.dataset.state = "done";
  } catch (err) {
    setStatus(err.message, true);
    document.body.dataset.state = "error";
  }
}

function plural(n, word) { return `${n} ${word}${n === 1 ? "" : "s"}`; }

function setStatus(text, isError) {
  const el = $("status");
  el.textContent = text;
  el.classList.toggle("error", Boolean(isError));
}

function showResult(result) {
  state.result = result;
  renderBars(result);
  renderTable(result);
  $("download-json").disabled = $("download-csv").disabled = false;
}

function renderBars(result) {
  const box = $("faces");
  box.replaceChildren();
  result.faces.forEach((face, i) => {
    const card = el("div", "face");
    card.append(el("h3", "", `Face ${i + 1} · detector ${face.score.toFixed(2)}`));
    for (const [name, pred] of Object.entries(face.attributes)) {
      card.append(el("div", "attr", pred.label === "uncertain" ? `${name} (uncertain)` : name));
      const entries = Object.entries(pred.probabilities).sort((a, b) => b[1] - a[1]);
      for (const [label, p] of entries) {
        const row = el("div", "bar" + (label === pred.label ? " best" : ""));
        const track = el("div", "track"), fill = el("div", "fill");
        fill.style.width = `${(100 * p).toFixed(1)}%`;
        track.append(fill);
        row.append(el("span", "", label), track, el("span", "", p.toFixed(2)));
        card.append(row);
      }
    }
    box.append(card);
  });
}

function renderTable(result) {
  const names = result.attributes;
  const head = $("table").tHead.rows[0];
  head.replaceChildren(...["#", "box (x, y, w, h)", "score", ...names].map((t) => el("th", "", t)));
  const body = $("table").tBodies[0];
  body.replaceChildren();
  result.faces.forEach((face, i) => {
    const b = face.box;
    const cells = [String(i + 1),
      [b.x1, b.y1, b.x2 - b.x1, b.y2 - b.y1].map((v) => Math.round(v)).join(", "),
      face.score.toFixed(3),
      ...names.map((n) => face.attributes[n] ? `${face.attributes[n].label} (${face.attributes[n].score.toFixed(2)})` : "")];
    const tr = document.createElement("tr");
    tr.append(...cells.map((c) => el("td", "", c)));
    body.append(tr);
  });
}

function el(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined) node.textContent = text;
  return node;
}

// --- downloads -------------------------------------------------------------------------

function download(name, type, text) {
  const a = el("a");
  a.href = URL.createObjectURL(new Blob([text], { type }));
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 1000);
}

function stem() { return (state.file || "camera").replace(/\.[^.]*$/, "") || "result"; }

function csvRows(result) {
  const names = result.attributes;
  const labels = names.map((n) => {
    const face = result.faces.find((f) => f.attributes[n]);
    return face ? Object.keys(face.attributes[n].probabilities) : [];
  });
  const header = ["file", "face", "x1", "y1", "x2", "y2", "score"];
  names.forEach((n, k) => header.push(n, `${n}_score`, ...labels[k].map((l) => `${n}_p_${l}`)));
  const rows = [header];
  result.faces.forEach((f, i) => {
    const row = [result.filename, i + 1, f.box.x1, f.box.y1, f.box.x2, f.box.y2, f.score];
    names.forEach((n, k) => {
      const p = f.attributes[n];
      row.push(p ? p.label : "", p ? p.score : "", ...labels[k].map((l) => (p ? p.probabilities[l] : "")));
    });
    rows.push(row);
  });
  return rows;
}

function toCsv(rows) {
  const quote = (v) => { const s = String(v); return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s; };
  return rows.map((r) => r.map(quote).join(",")).join("\n") + "\n";
}

// --- camera ----------------------------------------------------------------------------

async function startCamera() {
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    setStatus("this browser gives no camera here (it needs https or localhost)", true);
    return;
  }
  try {
    const stream = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 }, audio: false });
    const video = $("video");
    video.srcObject = stream;
    video.hidden = false;
    await video.play();
    state.camera = stream;
    state.file = "camera";
    $("camera").textContent = "Stop camera";
    $("camera").classList.add("on");
    setStatus("camera on");
    cameraLoop();
  } catch (err) {
    setStatus(`camera: ${err.message}`, true);
  }
}

function stopCamera() {
  if (!state.camera) return;
  state.camera.getTracks().forEach((t) => t.stop());
  state.camera = null;
  const video = $("video");
  video.srcObject = null;
  video.hidden = true;
  $("camera").textContent = "Start camera";
  $("camera").classList.remove("on");
}

// One request in flight at a time; boxes are drawn on a transparent canvas over the video.
async function cameraLoop() {
  const video = $("video"), canvas = $("canvas"), grab = document.createElement("canvas");
  let frames = 0;
  const started = performance.now();
  while (state.camera) {
    if (!video.videoWidth) { await new Promise((r) => requestAnimationFrame(r)); continue; }
    const scale = Math.min(1, CAMERA_SIDE / Math.max(video.videoWidth, video.videoHeight));
    grab.width = Math.round(video.videoWidth * scale);
    grab.height = Math.round(video.videoHeight * scale);
    grab.getContext("2d").drawImage(video, 0, 0, grab.width, grab.height);
    const blob = await new Promise((r) => grab.toBlob(r, "image/jpeg", 0.85));
    let result;
    try {
      result = await analyze(blob, "camera.jpg");
    } catch (err) {
      setStatus(err.message, true);
      await new Promise((r) => setTimeout(r, 1000));
      continue;
    }
    if (!state.camera) break;
    canvas.width = video.videoWidth;
    canvas.height = video.videoHeight;
    const ctx = canvas.getContext("2d");
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    drawFaces(ctx, result.faces, 1 / scale);
    showResult(result);
    frames += 1;
    const fps = frames / ((performance.now() - started) / 1000);
    setStatus(`camera: ${plural(result.faces.length, "face")} · ${fps.toFixed(1)} frames/s`);
  }
}

// --- wiring ----------------------------------------------------------------------------

async function showModels() {
  try {
    const response = await fetch("/v1/models", { headers: apiHeaders() });
    if (response.status === 401) { $("key-box").hidden = false; $("models").textContent = "enter the API key"; return; }
    const body = await response.json();
    const names = body.attributes.map((a) => a.name);
    $("models").textContent = `detector ${body.detector.default} · ` +
      (names.length ? `attributes: ${names.join(", ")}` : "no attribute models installed (boxes only)");
  } catch (err) {
    $("models").textContent = "server unreachable";
  }
}

function init() {
  const drop = $("drop"), input = $("file");
  input.addEventListener("change", () => {
    if (input.files[0]) showPhoto(input.files[0]);
    input.value = ""; // so choosing the same file again analyzes it again
  });
  drop.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") input.click(); });
  ["dragenter", "dragover"].forEach((t) => drop.addEventListener(t, (e) => { e.preventDefault(); drop.classList.add("over"); }));
  ["dragleave", "drop"].forEach((t) => drop.addEventListener(t, () => drop.classList.remove("over")));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    const file = [...e.dataTransfer.files].find((f) => f.type.startsWith("image/")) || e.dataTransfer.files[0];
    if (file) showPhoto(file);
  });
  $("camera").addEventListener("click", () => (state.camera ? stopCamera() : startCamera()));
  $("key").addEventListener("change", showModels);
  $("key-box").addEventListener("submit", (e) => { e.preventDefault(); showModels(); });
  $("download-json").addEventListener("click", () =>
    download(`${stem()}.json`, "application/json", JSON.stringify(state.result, null, 1)));
  $("download-csv").addEventListener("click", () =>
    download(`${stem()}.csv`, "text/csv", toCsv(csvRows(state.result))));
  showModels();
}

init();
