/* Reference vectors for the G.722 tests, made with spandsp's G.722
 * (libspandsp-dev, the implementation Asterisk and FreeSWITCH use):
 *
 *   cc -O2 -o /tmp/g722gen gen.c -lspandsp -lm && /tmp/g722gen
 *
 * in.s16: 0.5 s of 16 kHz audio (two tones, a sweep to 7.5 kHz, a loud
 * burst that clips the predictors, quiet noise), 16-bit little endian.
 * enc.g722: spandsp's 64 kbit/s encoding of it.
 * dec.s16: spandsp's decoding of enc.g722. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <spandsp.h>

#define N 8000

int main(void) {
	int16_t in[N], out[N];
	uint8_t enc[N / 2];
	uint32_t seed = 12345;
	for (int i = 0; i < N; i++) {
		double t = i / 16000.0, v;
		seed = seed * 1103515245 + 12345;
		double noise = ((int)(seed >> 16 & 0x7fff) - 16384) / 16384.0;
		if (i < 2000)
			v = 9000 * sin(2 * M_PI * 1000 * t) + 3000 * sin(2 * M_PI * 6000 * t);
		else if (i < 5000)
			v = 12000 * sin(2 * M_PI * (200 + 7300 * (i - 2000) / 3000.0 / 2) * t);
		else if (i < 6000)
			v = 40000 * sin(2 * M_PI * 440 * t);
		else
			v = 300 * noise;
		in[i] = v > 32767 ? 32767 : v < -32768 ? -32768 : (int16_t)lrint(v);
	}
	g722_encode_state_t *e = g722_encode_init(NULL, 64000, 0);
	int n = g722_encode(e, enc, in, N);
	g722_decode_state_t *d = g722_decode_init(NULL, 64000, 0);
	int m = g722_decode(d, out, enc, n);
	FILE *f = fopen("in.s16", "wb"); fwrite(in, 2, N, f); fclose(f);
	f = fopen("enc.g722", "wb"); fwrite(enc, 1, n, f); fclose(f);
	f = fopen("dec.s16", "wb"); fwrite(out, 2, m, f); fclose(f);
	printf("%d samples, %d bytes, %d decoded\n", N, n, m);
	return 0;
}
