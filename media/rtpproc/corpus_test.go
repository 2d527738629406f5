package rtpproc

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// TestWriteFuzzCorpus regenerates testdata/fuzz/<Fuzz...>/ from the seed
// functions of fuzz_test.go. It runs only with RTPPROC_WRITE_CORPUS=1.
func TestWriteFuzzCorpus(t *testing.T) {
	if os.Getenv("RTPPROC_WRITE_CORPUS") != "1" {
		t.Skip("set RTPPROC_WRITE_CORPUS=1 to rewrite the seed corpus")
	}
	var entries []corpusEntry
	for i, s := range normalizerSeeds() {
		entries = append(entries, corpusEntry{"FuzzNormalizer", i, fmt.Sprintf("[]byte(%q)\n", s)})
	}
	for i, s := range rtcpSeeds(t) {
		entries = append(entries, corpusEntry{"FuzzRTCP", i, fmt.Sprintf("[]byte(%q)\nuint32(%d)\nuint32(%d)\n", s, 0xaaaa, 0xbbbb)})
	}
	for i, s := range dtmfInfoSeeds() {
		entries = append(entries, corpusEntry{"FuzzDTMFInfo", i, fmt.Sprintf("string(%q)\n[]byte(%q)\n", s[0], s[1])})
	}
	for i, s := range cryptoSeeds() {
		entries = append(entries, corpusEntry{"FuzzCrypto", i, fmt.Sprintf("string(%q)\n", s)})
	}
	for _, e := range entries {
		dir := filepath.Join("testdata", "fuzz", e.fuzzer)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		name := filepath.Join(dir, fmt.Sprintf("seed-%02d", e.n))
		if err := os.WriteFile(name, []byte("go test fuzz v1\n"+e.body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

type corpusEntry struct {
	fuzzer string
	n      int
	body   string
}
