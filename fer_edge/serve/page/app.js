// fer-edge live page: the browser's camera -> the server over a WebSocket -> boxes, labels and bars drawn here.
// One frame is in flight at a time: the next is sent when the answer comes, so a slow server drops frames
// instead of queueing them. A token, if the server needs one, comes from the address: /#token=TOKEN.
"use strict";
const LABELS = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"];
const COLORS = { angry: "#e33", disgust: "#8b4", fear: "#a6e", happy: "#fc3", sad: "#39f", surprise: "#f80", neutral: "#aaa" };
const MAX_SIDE = 640; // frames are sent at most this wide or tall
const video = document.getElementById("video");
const overlay = document.getElementById("overlay");
const statusLine = document.getElementById("status");
const fpsLine = document.getElementById("fps");
const grab = document.createElement("canvas");
const token = new URLSearchParams(location.hash.slice(1)).get("token") || "";
let ws = null, sentAt = 0, answers = [], drawn = 0, cameraAt = 0;

function say(text, state) {
  statusLine.textContent = text;
  if (state) document.body.dataset.state = state;
}

async function start() {
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    say("This browser offers no camera here: open the page over https (fer-edge serve --ssl-certfile ...) or on localhost.", "error");
    return;
  }
  try {
    video.srcObject = await navigator.mediaDevices.getUserMedia({ video: { width: { ideal: 640 }, height: { ideal: 480 } }, audio: false });
    await video.play();
    cameraAt = performance.now();
  } catch (e) {
    say(`The camera was refused or is not there (${e.name}): allow the camera for this page and reload.`, "error");
    return;
  }
  connect();
}

function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  ws = new WebSocket(`${scheme}://${location.host}/v1/stream?token=${encodeURIComponent(token)}`);
  ws.binaryType = "arraybuffer";
  ws.onopen = () => { say("Connected: looking for faces.", "running"); send(); };
  ws.onmessage = (m) => {
    const reply = JSON.parse(m.data);
    const now = performance.now();
    answers.push(now);
    answers = answers.filter((t) => now - t < 2000);
    const fps = answers.length > 1 ? (answers.length - 1) / ((now - answers[0]) / 1000) : 0;
    fpsLine.textContent = `${fps.toFixed(1)} FPS round trip · ${(now - sentAt).toFixed(0)} ms · server ${reply.server_ms} ms`;
    if (reply.error) say(`The server refused a frame: ${reply.error}`);
    else draw(reply);
    send();
  };
  ws.onclose = (e) => {
    if (e.code === 4401) { say("Wrong or missing token: open this page as http://HOST:PORT/#token=TOKEN.", "error"); return; }
    say("Disconnected from the server: trying again…", "error");
    setTimeout(connect, 1000);
  };
}

function send() {
  if (!ws || ws.readyState !== WebSocket.OPEN) return;
  if (!video.videoWidth) { requestAnimationFrame(send); return; }
  const scale = Math.min(1, MAX_SIDE / Math.max(video.videoWidth, video.videoHeight));
  grab.width = Math.round(video.videoWidth * scale);
  grab.height = Math.round(video.videoHeight * scale);
  grab.getContext("2d").drawImage(video, 0, 0, grab.width, grab.height);
  grab.toBlob((blob) => blob.arrayBuffer().then((buf) => { sentAt = performance.now(); ws.send(buf); }), "image/jpeg", 0.8);
}

function draw(reply) {
  const rect = overlay.getBoundingClientRect();
  overlay.width = rect.width;
  overlay.height = rect.height;
  const ctx = overlay.getContext("2d");
  ctx.clearRect(0, 0, overlay.width, overlay.height);
  const sx = overlay.width / reply.width, sy = overlay.height / reply.height;
  ctx.font = "bold 16px system-ui, sans-serif";
  for (const f of reply.faces) {
    const x = f.x * sx, y = f.y * sy, w = f.w * sx, h = f.h * sy;
    const color = COLORS[f.label] || "#fff";
    ctx.lineWidth = 3;
    ctx.strokeStyle = color;
    ctx.strokeRect(x, y, w, h);
    const text = `${f.label} ${(100 * f.confidence).toFixed(0)}%`;
    ctx.fillStyle = color;
    ctx.fillRect(x, Math.max(0, y - 22), ctx.measureText(text).width + 8, 22);
    ctx.fillStyle = "#000";
    ctx.fillText(text, x + 4, Math.max(16, y - 6));
    LABELS.forEach((label, i) => { // one bar a class, beside the box
      const bar = Math.max(1, f[label] * 60);
      ctx.fillStyle = COLORS[label];
      ctx.fillRect(x + w + 6, y + i * 10, bar, 8);
    });
    drawn += 1;
  }
  document.body.dataset.faces = String(reply.faces.length);
  document.body.dataset.drawn = String(drawn);
  if (reply.faces.length) {
    document.body.dataset.label = reply.faces[0].label;
    // how long the first labelled box took from the camera's start
    if (!document.body.dataset.firstDrawMs) document.body.dataset.firstDrawMs = String(Math.round(performance.now() - cameraAt));
  }
  say(reply.faces.length ? `${reply.faces.length} face(s): ${reply.faces.map((f) => f.label).join(", ")}` : "No face in view.");
}

start();
