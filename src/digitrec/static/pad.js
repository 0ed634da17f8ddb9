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

function makePad(canvas, { stroke, onDraw, onStrokeEnd, onClearKey, onStrokeStart = () => {} }) {
  const ctx = canvas.getContext("2d");
  let drawing = false, last = null;
  // `version` changes on every clear, so a snapshot taken before it is not sent after it;
  // `extent` is the longest side of the box around the pen's path (0 for a tap)
  const pad = { canvas, ctx, inked: false, version: 0, extent: 0 };
  let box = null;

  pad.clear = () => {
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    ctx.strokeStyle = ctx.fillStyle = "#000";
    ctx.lineWidth = stroke;
    ctx.lineCap = ctx.lineJoin = "round";
    pad.inked = false;
    pad.version++;
    pad.extent = 0;
    box = null;
  };

  // snapshot(send): the canvas as a PNG to send(blob), unless the pad is cleared meanwhile
  pad.snapshot = (send) => {
    const v = pad.version;
    canvas.toBlob((blob) => { if (v === pad.version) send(blob); }, "image/png");
  };

  function grow(p) {
    box = box ? { x0: Math.min(box.x0, p.x), y0: Math.min(box.y0, p.y), x1: Math.max(box.x1, p.x),
                  y1: Math.max(box.y1, p.y) } : { x0: p.x, y0: p.y, x1: p.x, y1: p.y };
    pad.extent = Math.max(box.x1 - box.x0, box.y1 - box.y0);
  }

  function point(e) {
    const r = canvas.getBoundingClientRect();
    return { x: (e.clientX - r.left) * canvas.width / r.width, y: (e.clientY - r.top) * canvas.height / r.height };
  }

  canvas.addEventListener("pointerdown", (e) => {
    if (e.button !== 0 && e.pointerType === "mouse") return;
    e.preventDefault();
    canvas.focus({ preventScroll: true });   // so Delete or Escape clears what was just drawn
    onStrokeStart();
    canvas.setPointerCapture(e.pointerId);
    drawing = pad.inked = true;
    last = point(e);
    grow(last);
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
      grow(p);
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
