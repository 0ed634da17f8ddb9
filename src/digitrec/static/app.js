// The drawing page: pointer-event canvas (mouse, touch, pen), debounced live prediction,
// probability bars, the 28×28 the model saw, clear and upload. Plain JS, no build step.
"use strict";

const pad = document.getElementById("pad");
const ctx = pad.getContext("2d");
const seen = document.getElementById("seen").getContext("2d");
const result = document.getElementById("result");
const detail = document.getElementById("detail");
const errorBox = document.getElementById("error");
const bars = document.getElementById("bars");
// MNIST strokes are 2-3 px in the 20 px box, about 1/8 of the digit's height; a digit
// drawn over 2/3 of the box then wants a line about 1/12 of the canvas wide.
const STROKE = pad.width / 12;
const DEBOUNCE_MS = 120;

let drawing = false, last = null, inked = false, timer = null, seq = 0;

function blank() {
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, pad.width, pad.height);
  ctx.strokeStyle = "#000";
  ctx.fillStyle = "#000";
  ctx.lineWidth = STROKE;
  ctx.lineCap = "round";
  ctx.lineJoin = "round";
}

function buildBars() {
  for (let d = 0; d < 10; d++) {
    const li = document.createElement("li");
    li.id = "bar-" + d;
    li.innerHTML = `<span class="digit">${d}</span><span class="track" aria-hidden="true">` +
                   `<span class="fill"></span></span><span class="pct">0%</span>`;
    bars.appendChild(li);
  }
}

function point(e) {
  const r = pad.getBoundingClientRect();
  return { x: (e.clientX - r.left) * pad.width / r.width, y: (e.clientY - r.top) * pad.height / r.height };
}

function dot(p) {
  ctx.beginPath();
  ctx.arc(p.x, p.y, STROKE / 2, 0, 2 * Math.PI);
  ctx.fill();
}

function lineTo(p) {
  ctx.beginPath();
  ctx.moveTo(last.x, last.y);
  ctx.lineTo(p.x, p.y);
  ctx.stroke();
  last = p;
}

pad.addEventListener("pointerdown", (e) => {
  if (e.button !== 0 && e.pointerType === "mouse") return;
  e.preventDefault();
  pad.setPointerCapture(e.pointerId);
  drawing = true;
  inked = true;
  last = point(e);
  dot(last);
  schedule();
});

pad.addEventListener("pointermove", (e) => {
  if (!drawing) return;
  const events = e.getCoalescedEvents ? e.getCoalescedEvents() : [e];
  for (const ev of (events.length ? events : [e])) lineTo(point(ev));
  schedule();
});

function endStroke() {
  if (!drawing) return;
  drawing = false;
  last = null;
  predictNow();
}
pad.addEventListener("pointerup", endStroke);
pad.addEventListener("pointercancel", endStroke);

pad.addEventListener("keydown", (e) => {
  if (e.key === "Delete" || e.key === "Backspace" || e.key === "Escape") { e.preventDefault(); clear(); }
});

function schedule() {
  clearTimeout(timer);
  timer = setTimeout(predictNow, DEBOUNCE_MS);
}

function predictNow() {
  clearTimeout(timer);
  if (!inked) return;
  pad.toBlob((blob) => send(blob, "drawing.png"), "image/png");
}

async function send(blob, name) {
  const mine = ++seq;
  const form = new FormData();
  form.append("file", blob, name);
  try {
    const resp = await fetch("/v1/predict?normalized=true", { method: "POST", body: form });
    const body = await resp.json().catch(() => ({ message: `HTTP ${resp.status}` }));
    if (mine !== seq) return;            // a newer request is on its way: drop this answer
    if (!resp.ok) return showError(body.message || `HTTP ${resp.status}`);
    show(body);
  } catch (err) {
    if (mine === seq) showError("could not reach the server (" + err.message + ")");
  }
}

function showError(message) {
  errorBox.textContent = message;
  errorBox.hidden = false;
}

function show(p) {
  errorBox.hidden = true;
  result.dataset.status = p.status;
  result.dataset.label = p.label === null ? "" : String(p.label);
  const pct = (v) => (100 * v).toFixed(v >= 0.995 || v < 0.001 ? 0 : 1) + "%";
  if (p.status === "no_digit") {
    result.textContent = "No digit found";
    detail.textContent = "Draw a bigger or darker digit.";
  } else if (p.status === "uncertain") {
    result.textContent = `${p.label}?`;
    detail.textContent = `Not sure: best guess ${p.label} at ${pct(p.probability)}.`;
  } else {
    result.textContent = String(p.label);
    detail.textContent = `Probability ${pct(p.probability)}.`;
  }
  const best = p.label;
  const probs = p.probs && p.probs.length === 10 ? p.probs : new Array(10).fill(0);
  probs.forEach((v, d) => {
    const li = document.getElementById("bar-" + d);
    li.querySelector(".fill").style.width = (100 * v).toFixed(1) + "%";
    li.querySelector(".pct").textContent = pct(v);
    li.classList.toggle("best", d === best && p.status !== "no_digit");
    li.setAttribute("aria-label", `digit ${d}: ${pct(v)}`);
  });
  drawSeen(p.normalized);
  document.getElementById("model").textContent = p.model ? "Model: " + p.model : "";
}

function drawSeen(rows) {
  const img = seen.createImageData(28, 28);
  for (let y = 0; y < 28; y++) for (let x = 0; x < 28; x++) {
    const v = rows ? rows[y][x] : 0, i = 4 * (28 * y + x);
    img.data[i] = img.data[i + 1] = img.data[i + 2] = v;
    img.data[i + 3] = 255;
  }
  seen.putImageData(img, 0, 0);
}

function clear() {
  seq++;                                 // forget answers still in flight
  clearTimeout(timer);
  inked = false;
  blank();
  result.dataset.status = "empty";
  result.dataset.label = "";
  result.textContent = "Draw a digit";
  detail.textContent = "";
  errorBox.hidden = true;
  for (let d = 0; d < 10; d++) {
    const li = document.getElementById("bar-" + d);
    li.querySelector(".fill").style.width = "0";
    li.querySelector(".pct").textContent = "0%";
    li.classList.remove("best");
    li.setAttribute("aria-label", `digit ${d}: 0%`);
  }
  drawSeen(null);
}

document.getElementById("clear").addEventListener("click", clear);

document.getElementById("upload").addEventListener("change", (e) => {
  const file = e.target.files[0];
  if (!file) return;
  inked = false;                         // the canvas no longer holds the input
  send(file, file.name);
  e.target.value = "";
});

buildBars();
clear();
fetch("/v1/model").then((r) => r.json()).then((m) => {
  document.getElementById("model").textContent = "Model: " + m.name;
}).catch(() => {});
