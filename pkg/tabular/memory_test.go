package tabular

import (
	"bufio"
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/xuri/excelize/v2"
)

// writeBigCSV writes a CSV of mixed columns of about size bytes, a 1 MiB
// block of rows repeated, and returns the number of data rows written.
func writeBigCSV(t testing.TB, path string, size int64, commentRepeats int) int64 {
	t.Helper()
	var block []byte
	var blockRows int64
	for len(block) < 1<<20 {
		r := blockRows
		block = strconv.AppendInt(block, r, 10)
		block = append(block, ",2024-05-0"...)
		block = append(block, byte('1'+r%9))
		block = append(block, ',')
		block = strconv.AppendFloat(block, float64(r%100000)/100+0.01, 'f', 2, 64)
		block = append(block, ",\"Customer "...)
		block = strconv.AppendInt(block, r%977, 10)
		block = append(block, ", Ltd\","...)
		if r%2 == 0 {
			block = append(block, "true,"...)
		} else {
			block = append(block, "false,"...)
		}
		// A long free-text column, as exports often have: it keeps the row
		// count (and the per-cell work the race detector slows) moderate.
		block = append(block, '"')
		for range commentRepeats {
			block = append(block, "Delivered to the loading dock behind the warehouse; call ahead, ask for the shift lead, and bring the signed delivery note back to the office. "...)
		}
		block = append(block, "\"\n"...)
		blockRows++
	}
	f, err := os.Create(path)
	require.NoError(t, err)
	w := bufio.NewWriterSize(f, 1<<20)
	_, err = w.WriteString("id,day,amount,customer,paid,comment\n")
	require.NoError(t, err)
	var rows int64
	for written := int64(0); written < size; written += int64(len(block)) {
		_, err := w.Write(block)
		require.NoError(t, err)
		rows += blockRows
	}
	require.NoError(t, w.Flush())
	require.NoError(t, f.Close())
	return rows
}

// TestProfileCSVBoundedMemory profiles a 200 MB CSV and checks that the heap
// never grows past a fixed bound, far below the file's size. It does not
// call t.Parallel: other tests' allocations would blur the measurement, and
// Go runs every parallel test of the package only after it has finished.
func TestProfileCSVBoundedMemory(t *testing.T) {
	const size = 200 << 20
	const bound = 48 << 20
	path := filepath.Join(t.TempDir(), "big.csv")
	rows := writeBigCSV(t, path, size, 6)

	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapAlloc
	var peak uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapAlloc)
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	ds, err := ProfileFile(context.Background(), path, Options{SampleRows: 3})
	close(stop)
	wg.Wait()
	require.NoError(t, err)

	s := ds.Sheets[0]
	require.Equal(t, rows, s.RowCount)
	require.Equal(t, []Column{
		col("id", TypeInteger, 0), {Name: "day", Type: TypeDate, DateFormat: "%Y-%m-%d"}, col("amount", TypeDecimal, 0),
		col("customer", TypeText, 0), col("paid", TypeBoolean, 0), col("comment", TypeText, 0),
	}, s.Columns)
	require.Len(t, s.Samples, 3)
	grew := peak - min(base, peak)
	t.Logf("%d MiB, %d rows: heap grew by at most %.1f MiB", size>>20, rows, float64(grew)/(1<<20))
	require.Less(t, grew, uint64(bound), "heap grew by %d bytes profiling a %d-byte file", grew, size)
}

// BenchmarkProfileCSV profiles 20 MiB of narrow rows (six short cells) and
// of wide rows (the same plus a long quoted comment).
func BenchmarkProfileCSV(b *testing.B) {
	for _, bc := range []struct {
		name     string
		comments int
	}{{"narrow", 0}, {"wide", 6}} {
		b.Run(bc.name, func(b *testing.B) {
			path := filepath.Join(b.TempDir(), "bench.csv")
			rows := writeBigCSV(b, path, 20<<20, bc.comments)
			b.SetBytes(20 << 20)
			b.ResetTimer()
			for b.Loop() {
				if _, err := ProfileFile(context.Background(), path, Options{SampleRows: 5}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}

// BenchmarkProfileXLSX profiles a 50,000-row workbook written with
// excelize's stream writer, as exports from accounting tools look.
func BenchmarkProfileXLSX(b *testing.B) {
	const rows = 50_000
	f := excelize.NewFile()
	sw, err := f.NewStreamWriter("Sheet1")
	require.NoError(b, err)
	require.NoError(b, sw.SetRow("A1", []any{"id", "day", "amount", "customer", "paid"}))
	for i := 0; i < rows; i++ {
		cell, _ := excelize.CoordinatesToCellName(1, i+2)
		require.NoError(b, sw.SetRow(cell, []any{i, time.Date(2024, 1, 1+i%28, 0, 0, 0, 0, time.UTC), float64(i) + 0.25, "Customer " + strconv.Itoa(i%97), i%2 == 0}))
	}
	require.NoError(b, sw.Flush())
	path := filepath.Join(b.TempDir(), "bench.xlsx")
	require.NoError(b, f.SaveAs(path))
	require.NoError(b, f.Close())
	b.ResetTimer()
	for b.Loop() {
		ds, err := ProfileFile(context.Background(), path, Options{SampleRows: 5})
		if err != nil || ds.Sheets[0].RowCount != rows {
			b.Fatal(ds, err)
		}
	}
	b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}
