// posekit live page: webcam -> WebSocket /v1/stream -> skeletons on a canvas; photo upload -> /v1/pose;
// Move Mirror (/v1/search) when the server has an index.  Plain JavaScript, no build step, no network but posekit.
"use strict";
const $ = (id) => document.getElementById(id);
const view = $("view"), ctx = view.getContext("2d"), video = $("camera");
const LINE = "#00ff66", JOINT = "#ff3b30", THRESHOLD = 0.3, SEND_WIDTH = 640, MIRROR_EVERY_MS = 500;
let skeletons = {}, streamSkeleton = null, searchEnabled = false;
let mode = "live", ws = null, people = [], inFlight = null, frames = 0, reconnects = 0, retryMs = 500;
let lastReplies = [], photo = null, lastSearch = 0;
const grab = document.createElement("canvas");

function setStatus(text, ok) { $("status").textContent = text; $("status").className = ok ? "ok" : "bad"; }
function message(text) { $("message").textContent = text || ""; }

async function init() {
  try {
    const info = await (await fetch("/v1/models")).json();
    skeletons = info.skeletons; streamSkeleton = info.stream_skeleton;
    searchEnabled = info.search && info.search.enabled;
    $("model").textContent = info.stream_model;
    $("mirror").hidden = !searchEnabled;
  } catch (e) { message("cannot reach the server: " + e); }
  $("mode-live").onclick = () => setMode("live");
  $("mode-photo").onclick = () => setMode("photo");
  $("photo").onchange = (e) => e.target.files[0] && uploadPhoto(e.target.files[0]);
  startCamera();
  connect();
  requestAnimationFrame(render);
}

function setMode(m) {
  mode = m;
  $("mode-live").classList.toggle("on", m === "live");
  $("mode-photo").classList.toggle("on", m === "photo");
  $("photo-pick").hidden = m !== "photo";
  people = [];
  if (m === "live") sendFrame();
}

async function startCamera() {
  try {
    video.srcObject = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 }, audio: false });
    await video.play();
  } catch (e) { message("no camera (" + e.name + "): use Photo mode"); }
}

function connect() {
  const url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/v1/stream";
  ws = new WebSocket(url);
  ws.binaryType = "arraybuffer";
  ws.onopen = () => { setStatus("connected", true); retryMs = 500; inFlight = null; sendFrame(); };
  ws.onmessage = (ev) => onReply(JSON.parse(ev.data));
  ws.onclose = () => {
    setStatus("reconnecting", false); inFlight = null;
    setTimeout(() => { reconnects++; $("reconnects").textContent = reconnects; connect(); }, retryMs);
    retryMs = Math.min(retryMs * 2, 4000);
  };
}

function sendFrame() {
  if (mode !== "live" || !ws || ws.readyState !== WebSocket.OPEN || inFlight) return;
  if (!video.videoWidth) { setTimeout(sendFrame, 100); return; }
  const scale = Math.min(1, SEND_WIDTH / video.videoWidth);
  grab.width = Math.round(video.videoWidth * scale); grab.height = Math.round(video.videoHeight * scale);
  grab.getContext("2d").drawImage(video, 0, 0, grab.width, grab.height);
  inFlight = { t: performance.now(), scale };
  grab.toBlob((blob) => {
    if (ws.readyState === WebSocket.OPEN) ws.send(blob); else inFlight = null;
  }, "image/jpeg", 0.8);
  const sent = inFlight;
  setTimeout(() => { if (inFlight === sent) { inFlight = null; sendFrame(); } }, 5000);  // lost answer
}

function onReply(r) {
  const now = performance.now();
  const sent = inFlight; inFlight = null;
  if (r.error) { message("frame " + r.frame + ": " + r.error); }
  else {
    message("");
    const s = sent ? sent.scale : 1;
    people = (r.people || []).map((p) => scalePerson(p, 1 / s));
    frames++; $("frames").textContent = frames;
    $("people").textContent = people.length;
    if (sent) $("latency").textContent = Math.round(now - sent.t);
    lastReplies.push(now); lastReplies = lastReplies.filter((t) => now - t < 2000);
    $("fps").textContent = (lastReplies.length / 2).toFixed(1);
    if (searchEnabled && people.length && now - lastSearch > MIRROR_EVERY_MS) { lastSearch = now; mirror(people[0]); }
  }
  if (mode === "live") setTimeout(sendFrame, 0);
}

function scalePerson(p, k) {
  const kp = {};
  for (const [name, [x, y, s]] of Object.entries(p.keypoints)) kp[name] = [x * k, y * k, s];
  return { ...p, keypoints: kp, box: p.box.map((v) => v * k) };
}

function drawPeople(c, list, skeletonName, sx = 1, sy = 1) {
  const sk = skeletons[skeletonName] || Object.values(skeletons)[0];
  c.lineWidth = 4; c.font = "bold 16px sans-serif";
  for (const p of list) {
    const kp = Array.isArray(p.keypoints) ? p.keypoints : (sk ? sk.keypoints.map((n) => p.keypoints[n]) : []);
    c.strokeStyle = LINE;
    for (const [a, b] of (sk ? sk.edges : [])) {
      const pa = kp[a], pb = kp[b];
      if (!pa || !pb || pa[2] < THRESHOLD || pb[2] < THRESHOLD) continue;
      c.beginPath(); c.moveTo(pa[0] * sx, pa[1] * sy); c.lineTo(pb[0] * sx, pb[1] * sy); c.stroke();
    }
    c.fillStyle = JOINT;
    for (const q of kp) if (q && q[2] >= THRESHOLD) { c.beginPath(); c.arc(q[0] * sx, q[1] * sy, 4, 0, 7); c.fill(); }
    if (p.track_id !== undefined && p.box) {
      c.fillStyle = LINE; c.fillText("#" + p.track_id, p.box[0] * sx, Math.max(16, p.box[1] * sy - 4));
    }
  }
}

function render() {
  if (mode === "live" && video.videoWidth) {
    if (view.width !== video.videoWidth) { view.width = video.videoWidth; view.height = video.videoHeight; }
    ctx.drawImage(video, 0, 0);
    drawPeople(ctx, people, streamSkeleton);
  } else if (mode === "photo" && photo) {
    ctx.drawImage(photo.image, 0, 0);
    drawPeople(ctx, photo.people, photo.skeleton);
  }
  requestAnimationFrame(render);
}

async function uploadPhoto(file) {
  const form = new FormData(); form.append("image", file);
  const t = performance.now();
  const r = await (await fetch("/v1/pose", { method: "POST", body: form })).json();
  if (r.error) { message(r.error); return; }
  const image = await createImageBitmap(file, { imageOrientation: "from-image" });
  view.width = image.width; view.height = image.height;
  const name = Object.keys(skeletons).find((n) => r.people.length && skeletons[n].keypoints.length === Object.keys(r.people[0].keypoints).length);
  photo = { image, people: r.people, skeleton: name };
  $("people").textContent = r.people.length;
  $("latency").textContent = Math.round(performance.now() - t);
  message(r.people.length + " people in " + r.milliseconds + " ms of inference");
}

async function mirror(person) {
  try {
    const res = await fetch("/v1/search", { method: "POST", headers: { "content-type": "application/json" },
      body: JSON.stringify({ keypoints: person.keypoints, k: 1, mirror: true }) });
    const r = await res.json();
    const m = r.matches && r.matches[0];
    if (!m) { $("match-info").textContent = r.error || "no match"; return; }
    const c = $("match").getContext("2d");
    c.clearRect(0, 0, 256, 256);
    const info = m.source.split("/").pop() + (m.frame !== null ? " @" + m.frame : "") + "  d=" + m.distance.toFixed(3);
    if (m.thumbnail) {
      const img = new Image();
      img.onload = () => {
        const [x1, y1, x2, y2] = m.thumbnail_region, k = Math.min(256 / img.width, 256 / img.height);
        c.drawImage(img, 0, 0, img.width * k, img.height * k);
        const sx = img.width * k / (x2 - x1), sy = img.height * k / (y2 - y1);
        drawPeople(c, [{ keypoints: m.keypoints.map(([x, y, s]) => [x - x1, y - y1, s]) }], "coco17", sx, sy);
      };
      img.src = m.thumbnail;
    }
    $("match-info").textContent = info;
  } catch (e) { $("match-info").textContent = "search failed: " + e; }
}

init();
