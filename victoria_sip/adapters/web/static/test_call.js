// The Agents page's test call (admins): the microphone to /api/test-call over a WebSocket, the voice back.
// Audio is 16-bit mono PCM at 16 kHz both ways; replies are scheduled back to back, and dropped on "clear"
// (the caller talked over them). Works in Chromium-based browsers (an AudioContext at 16 kHz fed by a
// microphone at another rate).
import { csrf } from "./session.js";

const RATE = 16000;
const JITTER_SECONDS = 0.06; // a little audio in hand before the first frame of each reply plays
const panel = document.getElementById("test-call");
const state = document.getElementById("test-state");
const heard = document.getElementById("heard-seconds");
let call = null;

for (const button of document.querySelectorAll("button.call-agent")) {
  button.addEventListener("click", () => start(button.dataset.agent));
}
for (const key of document.querySelectorAll("#test-call button.key")) {
  key.addEventListener("click", () => send({ type: "key", key: key.dataset.key }));
}
document.getElementById("hang-up").addEventListener("click", () => send({ type: "hangup" }));

function send(message) {
  if (call && call.socket.readyState === WebSocket.OPEN) call.socket.send(JSON.stringify(message));
}

async function start(agent) {
  if (call) return;
  panel.hidden = false;
  document.getElementById("test-agent").textContent = agent;
  state.textContent = "asking for the microphone…";
  heard.textContent = "0.0";
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({
      audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true, autoGainControl: true },
    });
  } catch (error) {
    state.textContent = `No microphone: ${error.message}`;
    return;
  }
  const context = new AudioContext({ sampleRate: RATE });
  await context.audioWorklet.addModule("/static/mic_worklet.js");
  const mic = new AudioWorkletNode(context, "victoria-mic");
  const mute = context.createGain(); // the worklet is pulled only when it leads to the speakers; silently
  mute.gain.value = 0;
  context.createMediaStreamSource(stream).connect(mic).connect(mute).connect(context.destination);
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const query = new URLSearchParams({ agent, csrf });
  const socket = new WebSocket(`${scheme}//${location.host}/api/test-call?${query}`);
  socket.binaryType = "arraybuffer";
  call = { context, stream, socket, playing: new Set(), nextAt: 0, heard: 0 };
  state.textContent = "calling…";
  mic.port.onmessage = (event) => {
    if (socket.readyState === WebSocket.OPEN) socket.send(event.data);
  };
  socket.onmessage = (event) => {
    if (typeof event.data === "string") control(JSON.parse(event.data));
    else play(event.data);
  };
  socket.onclose = () => finish();
}

function play(buffer) {
  const samples = new Int16Array(buffer);
  const audio = call.context.createBuffer(1, samples.length, RATE);
  const channel = audio.getChannelData(0);
  for (let i = 0; i < samples.length; i++) channel[i] = samples[i] / 32768;
  const source = call.context.createBufferSource();
  source.buffer = audio;
  source.connect(call.context.destination);
  const now = call.context.currentTime;
  if (call.nextAt < now) call.nextAt = now + JITTER_SECONDS;
  source.start(call.nextAt);
  call.nextAt += audio.duration;
  const current = call;
  current.playing.add(source);
  source.onended = () => {
    if (!current.playing.delete(source)) return; // dropped by "clear": not heard
    current.heard += audio.duration;
    heard.textContent = current.heard.toFixed(1);
  };
}

function control(message) {
  if (message.type === "answered") state.textContent = "connected: speak now";
  else if (message.type === "busy") state.textContent = `Busy: ${message.detail}`;
  else if (message.type === "ended") state.textContent = `Call ended (${message.reason})`;
  else if (message.type === "clear") {
    const dropped = [...call.playing];
    call.playing.clear();
    for (const source of dropped) source.stop();
    call.nextAt = 0;
  }
}

function finish() {
  if (!call) return;
  for (const track of call.stream.getTracks()) track.stop();
  const ending = call;
  call = null;
  setTimeout(() => ending.context.close(), 1000); // what is scheduled still plays out
  if (state.textContent.startsWith("connected") || state.textContent === "calling…") state.textContent = "Call ended";
}
