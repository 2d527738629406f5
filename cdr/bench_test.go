package cdr

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sbc-project/sbc/test/cdr/pgtest"
)

// Benchmarks of CDR throughput, in records per second (BENCHMARKS.md):
//
//	go test -run '^$' -bench . -benchtime 20000x ./cdr
//
// BenchmarkCallEnded measures what a call pays: CallEnded from many
// goroutines, each returning once its record is fsynced in the spool.
// BenchmarkWriter measures one writer alone, in batches as the recorder
// hands them over (each batch fsynced or committed). BenchmarkEndToEnd
// measures records ended and delivered by every writer.

func benchRecords(n int) []Record {
	recs := make([]Record, n)
	for i := range recs {
		recs[i] = FromCall(call("bench", i), "node-1")
	}
	return recs
}

// BenchmarkCallEnded runs 32 calls ending at once per CPU.
func BenchmarkCallEnded(b *testing.B) {
	cfg := fileConfig(b)
	cfg.Log = quiet
	r := mustOpen(b, cfg)
	defer r.Close()
	var n atomic.Int64
	b.SetParallelism(32)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		c := answeredCall("x")
		for pb.Next() {
			c.ID = strconv.FormatInt(n.Add(1), 10)
			r.CallEnded(c)
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
	b.ReportMetric(float64(r.j.syncs.Load())/float64(b.N), "fsyncs/record")
}

var quiet = slog.New(slog.DiscardHandler)

func BenchmarkWriter(b *testing.B) {
	for _, typ := range []string{TypeJSONL, TypeCSV, TypePostgres} {
		b.Run(typ, func(b *testing.B) {
			s := benchSink(b, typ)
			defer s.close()
			recs := benchRecords(batchMax)
			b.ResetTimer()
			for done := 0; done < b.N; {
				n := min(batchMax, b.N-done)
				// Fresh ids: PostgreSQL must insert, not skip conflicts.
				for i := range n {
					recs[i].ID = fmt.Sprintf("%d-%d", done, i)
				}
				k, err := s.write(context.Background(), recs[:n])
				if err != nil {
					b.Fatal(err)
				}
				if err := s.committed(time.Now()); err != nil {
					b.Fatal(err)
				}
				done += k
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
		})
	}
}

func benchSink(b *testing.B, typ string) sink {
	w := WriterConfig{Key: "bench", Type: typ, Dir: b.TempDir(), MaxBytes: 64 << 20}
	if typ == TypePostgres {
		w.DSN = pgtest.Start(b).CreateDB(b, "bench")
	}
	s, err := newSink(context.Background(), w, "node-1", quiet)
	if err != nil {
		b.Fatal(err)
	}
	return s
}

func BenchmarkEndToEnd(b *testing.B) {
	for _, writers := range [][]string{{TypeJSONL}, {TypeCSV}, {TypePostgres}, {TypeJSONL, TypeCSV, TypePostgres}} {
		name := fmt.Sprint(writers)
		b.Run(name, func(b *testing.B) {
			cfg := fileConfig(b)
			cfg.Log = quiet
			cfg.Writers = nil
			for _, typ := range writers {
				w := WriterConfig{Type: typ, Dir: b.TempDir(), MaxBytes: 64 << 20}
				if typ == TypePostgres {
					w.DSN = pgtest.Start(b).CreateDB(b, "e2e")
				}
				cfg.Writers = append(cfg.Writers, w)
			}
			r := mustOpen(b, cfg)
			defer r.Close()
			b.ResetTimer()
			runCalls(r, fmt.Sprint(time.Now().UnixNano()), b.N, 64)
			waitDelivered(b, r, 10*time.Minute)
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
			saves := uint64(0)
			for _, run := range r.runners {
				saves += run.saves.Load()
			}
			b.ReportMetric(float64(saves)/float64(b.N), "cursor-saves/record")
		})
	}
}

// BenchmarkCallEndedPaced ends calls at a steady rate from goroutines of
// their own, as calls end under load (300/s for the benchmark's second),
// and reports the fsyncs each record cost:
//
//	go test -run '^$' -bench CallEndedPaced -benchtime 300x ./cdr/
func BenchmarkCallEndedPaced(b *testing.B) {
	cfg := fileConfig(b)
	cfg.Log = quiet
	r := mustOpen(b, cfg)
	defer r.Close()
	const rate = 300
	tick := time.NewTicker(time.Second / rate)
	defer tick.Stop()
	var wg sync.WaitGroup
	n := 0
	for b.Loop() {
		<-tick.C
		n++
		c := answeredCall("x")
		c.ID = strconv.Itoa(n)
		wg.Go(func() { r.CallEnded(c) })
	}
	wg.Wait()
	b.ReportMetric(float64(r.j.syncs.Load())/float64(n), "fsyncs/record")
}

// BenchmarkCallProgress journals a call in progress the way the B2BUA
// does on the call's goroutine: its start, then its answer (a frame
// written each, no fsync). The call is then forgotten, as its end would
// (the end's fsync is BenchmarkCallEnded's): segments checkpoint only the
// calls in progress.
func BenchmarkCallProgress(b *testing.B) {
	cfg := fileConfig(b)
	cfg.Log = quiet
	r := mustOpen(b, cfg)
	defer r.Close()
	c := answeredCall("x")
	n := 0
	b.ReportAllocs()
	for b.Loop() {
		n++
		c.ID = strconv.Itoa(n)
		r.CallStarted(c)
		r.CallAnswered(c)
		r.j.mu.Lock()
		r.j.open.remove(c.ID)
		r.j.mu.Unlock()
	}
}
