// The microphone, cut into 20 ms frames of 16-bit PCM (the AudioContext runs at 16 kHz) for the test call.
class VictoriaMic extends AudioWorkletProcessor {
  constructor() {
    super();
    this.frame = new Int16Array(320);
    this.filled = 0;
  }

  process(inputs) {
    const input = inputs[0] && inputs[0][0];
    if (input) {
      for (let i = 0; i < input.length; i++) {
        const sample = Math.max(-1, Math.min(1, input[i]));
        this.frame[this.filled++] = sample < 0 ? sample * 32768 : sample * 32767;
        if (this.filled === this.frame.length) {
          this.port.postMessage(this.frame.buffer.slice(0));
          this.filled = 0;
        }
      }
    }
    return true; // keep listening until the call ends
  }
}

registerProcessor("victoria-mic", VictoriaMic);
