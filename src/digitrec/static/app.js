// The digit page: debounced live prediction of what is drawn on the pad (pad.js), probability
// bars, the 28×28 the model saw, clear and upload. Plain JS, no build step.
"use strict";

const seen = document.getElementById("seen").getContext("2d");
const result = document.getElementById("result");
const detail = document.getElementById("detail");
const errorBox = document.getElementById("error");
const bars = document.getElementById("bars");
const canvas = document.getElementById("pad");
// MNIST strokes are 2-3 px in the 20 px box, about 1/8 of the digit's height; a digit
// drawn over 2/3 of the box then wants a line about 1/12 of the canvas wide.
const pad = makePad(canvas, { stroke: canvas.width / 12, onDraw: schedule, onStrokeEnd: predictNow,
                              onClearKey: clear });
const DEBOUNCE_MS = 120;

let timer = null;
const send = latestOnly("/v1/predict?normalized=true", show, showError);

function buildBars() {
  for (let d = 0; d < 10; d++) {
    const li = document.createElement("li");
    li.id = "bar-" + d;
    li.innerHTML = `<span class="digit">${d}</span><span class="track" aria-hidden="true">` +
                   `<span class="fill"></span></span><span class="pct">0%</span>`;
    bars.appendChild(li);
  }
}

function schedule() {
  clearTimeout(timer);
  timer = setTimeout(predictNow, DEBOUNCE_MS);
}

// a tap or a dot: too small for the model to tell what it is (it would call it a sure 0)
const MIN_EXTENT = canvas.width / 10;

function predictNow() {
  clearTimeout(timer);
  if (!pad.inked) return;
  if (pad.extent < MIN_EXTENT) {
    send.forget();
    resetResult("Too small", "Draw the digit bigger: most of the box high.");
    return;
  }
  pad.snapshot((blob) => send(blob, "drawing.png"));
}

function showError(message) {
  resetResult("Not read", "");           // nothing of an earlier answer stays on screen
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
  } else if (p.status === "uncertain" && p.not_one_digit >= 0.5) {
    result.textContent = "?";
    detail.textContent = "This looks like more than one digit. Draw one digit, or read a whole number on “A number” above.";
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
  send.forget();                         // answers still in flight are not shown
  clearTimeout(timer);
  pad.clear();
  resetResult("Draw a digit", "");
}

function resetResult(title, hint) {
  result.dataset.status = "empty";
  result.dataset.label = "";
  result.textContent = title;
  detail.textContent = hint;
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
  clear();                               // the drawing is not the input any more, nor its answer
  resetResult("Reading…", "");
  send(file, file.name);
  e.target.value = "";
});

buildBars();
clear();
fetch("/v1/model").then((r) => r.json()).then((m) => {
  document.getElementById("model").textContent = "Model: " + m.name;
}).catch(() => {});
