// The number page: what is written on the pad (pad.js), or an uploaded photo, read by the
// server's OCR (POST /v1/ocr) when a stroke ends; boxes and labels drawn over the writing,
// the text of each line, and each digit with its confidence. Plain JS, no build step.
"use strict";

const sheet = document.getElementById("sheet");
const boxes = document.getElementById("boxes").getContext("2d");
const text = document.getElementById("text");
const digits = document.getElementById("digits");
const errorBox = document.getElementById("error");
// the digit page's pen (23 px): about 1/8 of a digit written just over half the sheet high, as in MNIST
const pad = makePad(sheet, { stroke: sheet.height / 14, onDraw: () => clearTimeout(timer),
                             onStrokeEnd: schedule, onClearKey: clear,
                             onStrokeStart: () => { if (photo) clear(); } });  // writing starts a fresh sheet
const DEBOUNCE_MS = 350;     // a pause between strokes of one digit should not read half of it

let timer = null;
const send = latestOnly("/v1/ocr", show, showError);
let place = { x: 0, y: 0, scale: 1 };   // image pixels -> sheet pixels (an upload is fitted in)
let photo = false;                       // the sheet shows an uploaded photo, not writing

function schedule() {
  clearTimeout(timer);
  timer = setTimeout(readNow, DEBOUNCE_MS);
}

function read(blob, name) {
  text.dataset.status = "reading";
  text.textContent = "Reading…";
  send(blob, name);
}

function readNow() {
  clearTimeout(timer);
  if (!pad.inked) return;
  if (pad.extent < sheet.height / 12) {  // a tap or a dot is no digit (it would be read as a 0)
    send.forget();
    text.dataset.status = "none";
    text.textContent = "Too small: write the digits bigger";
    return;
  }
  place = { x: 0, y: 0, scale: 1 };
  pad.snapshot((blob) => read(blob, "writing.png"));
}

function showError(message) {
  clearResult();
  text.dataset.status = "error";
  text.dataset.text = "";
  text.textContent = "Not read";
  errorBox.textContent = message;
  errorBox.hidden = false;
}

function show(r) {
  errorBox.hidden = true;
  const all = r.lines.flatMap((line) => line.digits);
  text.dataset.status = all.length ? (all.some((d) => d.label === "?") ? "unsure" : "ok") : "none";
  text.dataset.text = r.text;
  text.textContent = all.length ? r.text : "No digits found";
  clearResult();
  boxes.lineWidth = 3;
  boxes.font = "bold 26px system-ui, sans-serif";
  boxes.textBaseline = "bottom";
  r.lines.forEach((line, k) => showLine(line.digits, k > 0));  // each line's digits on a row of their own
}

// one line's digits: a box and label on the sheet, an item in the list (after a break for later lines)
function showLine(lineDigits, newRow) {
  if (newRow && lineDigits.length) {
    const br = document.createElement("li");
    br.className = "line-break";
    br.setAttribute("aria-hidden", "true");
    digits.appendChild(br);
  }
  for (const d of lineDigits) {
    const [x0, y0, x1, y1] = d.box.map((v) => v * place.scale);
    const x = place.x + x0, y = place.y + y0;
    const colour = d.label === "?" ? "#a05a00" : "#1f5fbf";
    boxes.strokeStyle = boxes.fillStyle = colour;
    boxes.strokeRect(x, y, x1 - x0, y1 - y0);
    boxes.fillText(d.label, x + 2, Math.max(28, y - 2));
    const li = document.createElement("li");
    const pct = Math.round(100 * d.confidence);
    li.className = d.label === "?" ? "unsure" : "";
    li.innerHTML = `<span class="digit"></span><span class="pct">${pct}%</span>`;
    li.querySelector(".digit").textContent = d.label;
    li.setAttribute("aria-label", d.label === "?" ? `unsure digit: ${pct}%` : `digit ${d.label}: ${pct}%`);
    digits.appendChild(li);
  }
}

function clearResult() {
  boxes.clearRect(0, 0, boxes.canvas.width, boxes.canvas.height);
  digits.replaceChildren();
}

function clear() {
  send.forget();                         // answers still in flight are not shown
  clearTimeout(timer);
  pad.clear();
  photo = false;
  clearResult();
  text.dataset.status = "empty";
  text.dataset.text = "";
  text.textContent = "Write a number";
  errorBox.hidden = true;
}

document.getElementById("clear").addEventListener("click", clear);

document.getElementById("upload").addEventListener("change", async (e) => {
  const file = e.target.files[0];
  e.target.value = "";
  if (!file) return;
  clear();
  try {                                  // show the photo on the sheet, fitted, so the boxes land on it
    const img = await createImageBitmap(file);
    const scale = Math.min(sheet.width / img.width, sheet.height / img.height);
    place = { x: (sheet.width - img.width * scale) / 2, y: (sheet.height - img.height * scale) / 2, scale };
    pad.ctx.drawImage(img, place.x, place.y, img.width * scale, img.height * scale);
    photo = true;
  } catch (err) {
    place = { x: 0, y: 0, scale: 1 };    // the browser cannot show it; the server says why
  }
  read(file, file.name);
});

clear();
fetch("/v1/model").then((r) => r.json()).then((m) => {
  document.getElementById("model").textContent = m.ocr ? "Read by: " + (m.ocr_model || m.name)
                                                       : "This server's model cannot read numbers.";
}).catch(() => {});
