// What both pages share: the drawing surface, a canvas of white paper drawn on in black with
// pointer events (mouse, touch, pen), cleared with Delete, Backspace or Escape (each page says
// what to do while a stroke is drawn, after it ends and on clearing); and the upload of an image
// to the API, keeping only the latest answer.
"use strict";

// POST an image as a multipart upload; the JSON answer, or an Error carrying the API's message.
async function postImage(url, blob, name) {
  const form = new FormData();
  form.append("file", blob, name);
  let resp;
  try {
    resp = await fetch(url, { method: "POST", body: form });
  } catch (err) {
    throw new Error("could not reach the server (" + err.message + ")");
  }
  const body = await resp.json().catch(() => ({ message: `HTTP ${resp.status}` }));
  if (!resp.ok) throw new Error(body.message || `HTTP ${resp.status}`);
  return body;
}

// A sender of images to `url` that hands on only the answer to the latest one (`show`, or
// `showError` with the message); send.forget() drops the answers still in flight.
function latestOnly(url, show, showError) {
  let seq = 0;
  async function send(blob, name) {
    const mine = ++seq;
    let body;
    try {
      body = await postImage(url, blob, name);
    } catch (err) {
      if (mine === seq) showError(err.message);
      return;
    }
    if (mine === seq) show(body);
  }
  send.forget = () => { seq++; };
  return send;
}

function makePad(canvas, { stroke, onDraw, onStrokeEnd, onClearKey }) {
  const ctx = canvas.getContext("2d");
  let drawing = false, last = null;
  const pad = { canvas, ctx, inked: false };

  pad.clear = () => {
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    ctx.strokeStyle = ctx.fillStyle = "#000";
    ctx.lineWidth = stroke;
    ctx.lineCap = ctx.lineJoin = "round";
    pad.inked = false;
  };

  function point(e) {
    const r = canvas.getBoundingClientRect();
    return { x: (e.clientX - r.left) * canvas.width / r.width, y: (e.clientY - r.top) * canvas.height / r.height };
  }

  canvas.addEventListener("pointerdown", (e) => {
    if (e.button !== 0 && e.pointerType === "mouse") return;
    e.preventDefault();
    canvas.setPointerCapture(e.pointerId);
    drawing = pad.inked = true;
    last = point(e);
    ctx.beginPath();
    ctx.arc(last.x, last.y, stroke / 2, 0, 2 * Math.PI);
    ctx.fill();
    onDraw();
  });

  canvas.addEventListener("pointermove", (e) => {
    if (!drawing) return;
    const events = e.getCoalescedEvents ? e.getCoalescedEvents() : [e];
    for (const ev of (events.length ? events : [e])) {
      const p = point(ev);
      ctx.beginPath();
      ctx.moveTo(last.x, last.y);
      ctx.lineTo(p.x, p.y);
      ctx.stroke();
      last = p;
    }
    onDraw();
  });

  function endStroke() {
    if (!drawing) return;
    drawing = false;
    last = null;
    onStrokeEnd();
  }
  canvas.addEventListener("pointerup", endStroke);
  canvas.addEventListener("pointercancel", endStroke);

  canvas.addEventListener("keydown", (e) => {
    if (e.key === "Delete" || e.key === "Backspace" || e.key === "Escape") { e.preventDefault(); onClearKey(); }
  });

  pad.clear();
  return pad;
}
