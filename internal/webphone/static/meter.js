// meter.js: audio level meters for the web phone. It defines the global
// LevelMeters, used by phone.js.
//
// A level is the RMS of the last ~20 ms of samples from a WebAudio
// AnalyserNode, mapped from -60..0 dBFS onto 0..1 for a <meter>. An
// AudioContext created without a user gesture (auto-answer) may stay
// suspended; the level then comes from the RTCPeerConnection's audioLevel
// statistics instead, so the meters move either way.
'use strict';

class LevelMeters {
  // local and remote are <meter> elements.
  constructor(local, remote) {
    this.local = local;
    this.remote = remote;
    this.ctx = null;
    this.nodes = { local: null, remote: null };
    this.timer = null;
    this.pc = null;
  }

  // resume lets the AudioContext run; call it from a click handler.
  resume() {
    if (this.ctx && this.ctx.state === 'suspended') {
      this.ctx.resume().catch(() => {});
    }
  }

  // watch starts metering stream on side 'local' or 'remote'.
  watch(side, stream) {
    try {
      if (!this.ctx) {
        this.ctx = new AudioContext();
      }
      this.resume();
      if (this.nodes[side]) {
        this.nodes[side].source.disconnect();
      }
      const source = this.ctx.createMediaStreamSource(stream);
      const analyser = this.ctx.createAnalyser();
      analyser.fftSize = 1024;
      source.connect(analyser);
      this.nodes[side] = { source, analyser, buf: new Float32Array(analyser.fftSize) };
    } catch (e) {
      // No WebAudio: the statistics fallback still works.
      this.nodes[side] = null;
    }
    this.start();
  }

  // usePeerConnection sets the fallback source of levels.
  usePeerConnection(pc) {
    this.pc = pc;
    this.start();
  }

  start() {
    if (!this.timer) {
      this.timer = setInterval(() => this.tick(), 100);
    }
  }

  // stop ends metering and zeroes both meters.
  stop() {
    clearInterval(this.timer);
    this.timer = null;
    for (const side of ['local', 'remote']) {
      if (this.nodes[side]) {
        this.nodes[side].source.disconnect();
        this.nodes[side] = null;
      }
    }
    this.pc = null;
    this.local.value = 0;
    this.remote.value = 0;
  }

  tick() {
    const running = this.ctx && this.ctx.state === 'running';
    if (running) {
      this.local.value = this.level(this.nodes.local);
      this.remote.value = this.level(this.nodes.remote);
      return;
    }
    if (this.pc) {
      this.fromStats(this.pc);
    }
  }

  level(node) {
    if (!node) {
      return 0;
    }
    node.analyser.getFloatTimeDomainData(node.buf);
    let sum = 0;
    for (const v of node.buf) {
      sum += v * v;
    }
    return LevelMeters.scale(Math.sqrt(sum / node.buf.length));
  }

  // fromStats reads audioLevel (0..1, linear) of the microphone source and
  // of the received stream.
  fromStats(pc) {
    pc.getStats().then((report) => {
      report.forEach((s) => {
        if (s.kind !== 'audio' || typeof s.audioLevel !== 'number') {
          return;
        }
        if (s.type === 'media-source') {
          this.local.value = LevelMeters.scale(s.audioLevel);
        } else if (s.type === 'inbound-rtp') {
          this.remote.value = LevelMeters.scale(s.audioLevel);
        }
      });
    }).catch(() => {});
  }

  // scale maps a linear amplitude onto 0..1 over -60..0 dBFS.
  static scale(amplitude) {
    if (amplitude <= 0) {
      return 0;
    }
    const db = 20 * Math.log10(amplitude);
    return Math.min(1, Math.max(0, (db + 60) / 60));
  }
}
