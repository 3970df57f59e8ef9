package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
)

// WriteJSON writes s as one JSON object on one line.
func WriteJSON(w io.Writer, s *Summary) error {
	if err := json.NewEncoder(w).Encode(s); err != nil {
		return fmt.Errorf("write summary: %w", err)
	}
	return nil
}

// WriteTable writes the summaries as an aligned table and, when both an
// mqimd and a bare summary are present, their ratio.
func WriteTable(w io.Writer, sums []*Summary) error {
	if len(sums) > 0 && sums[0].Scenario != "1to1" {
		return writeOtherTable(w, sums)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\ttarget\tsenders\tinflight\trate\tsize\tsecs\tacked/s\tdelivered/s\tp50 ms\tp99 ms\tp99.9 ms\terrors\tlost\tdups\t")
	for _, s := range sums {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\t%d\t%.1f\t%.0f\t%.0f\t%.2f\t%.2f\t%.2f\t%d\t%d\t%d\t\n",
			s.Scenario, s.Target, s.Senders, s.Inflight, rate(s.Rate), s.Size, s.DurationS,
			s.MsgsPerSec, s.DeliveredPerSec, s.P50ms, s.P99ms, s.P999ms, s.Errors, s.Lost, s.Duplicates)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write table: %w", err)
	}
	im, bare := find(sums, "mqimd"), find(sums, "bare")
	if im != nil && bare != nil {
		fmt.Fprintf(w, "mqimd/bare: throughput %s, delivered %s, p50 %s, p99 %s, p99.9 %s\n",
			ratio(im.MsgsPerSec, bare.MsgsPerSec), ratio(im.DeliveredPerSec, bare.DeliveredPerSec),
			ratio(im.P50ms, bare.P50ms), ratio(im.P99ms, bare.P99ms), ratio(im.P999ms, bare.P999ms))
	}
	for _, s := range sums {
		if s.FirstError != "" {
			fmt.Fprintf(w, "%s: first error: %s\n", s.Target, s.FirstError)
		}
	}
	return nil
}

func find(sums []*Summary, target string) *Summary {
	for _, s := range sums {
		if s.Target == target {
			return s
		}
	}
	return nil
}

func rate(r float64) string {
	if r == 0 {
		return "max"
	}
	return strconv.FormatFloat(r, 'f', -1, 64)
}

func ratio(a, b float64) string {
	if b == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.2f×", a/b)
}

// writeOtherTable writes the summaries of the sync and conns scenarios.
func writeOtherTable(w io.Writer, sums []*Summary) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	switch sums[0].Scenario {
	case "group":
		fmt.Fprintln(tw, "scenario\ttarget\tmembers\tfan-out\trate\tsent\tdeliveries\tdeliveries/s\tp50 ms\tp99 ms\tp99.9 ms\terrors\tlost\tdups\tout of order\t")
		for _, s := range sums {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%d\t%d\t%.0f\t%.2f\t%.2f\t%.2f\t%d\t%d\t%d\t%d\t\n", s.Scenario, s.Target, s.Members, s.Fanout,
				rate(s.Rate), s.Acked, s.Delivered, s.MsgsPerSec, s.P50ms, s.P99ms, s.P999ms, s.Errors, s.Lost, s.Duplicates, s.OutOfOrder)
		}
	case "push":
		fmt.Fprintln(tw, "scenario\ttarget\tpush\tround\trecipients\tsenders\tinflight\trate\tsecs\tsent/s\tpushes/s\tp50 ms\tp99 ms\tp99.9 ms\tsent\tpushed\terrors\tlost\tdups\t")
		for _, s := range sums {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%d\t%s\t%.1f\t%.0f\t%.0f\t%.2f\t%.2f\t%.2f\t%d\t%d\t%d\t%d\t%d\t\n", s.Scenario, s.Target,
				s.Push, s.Round, s.Recipients, s.Senders, s.Inflight, rate(s.Rate), s.DurationS, s.MsgsPerSec, s.DeliveredPerSec,
				s.P50ms, s.P99ms, s.P999ms, s.Acked, s.Delivered, s.Errors, s.Lost, s.Duplicates)
		}
		if on, off := PushCost(sums); off > 0 {
			defer fmt.Fprintf(w, "send rate as fast as possible, median: push on %.0f/s, push off %.0f/s: %+.1f %%\n", on, off, 100*(on/off-1))
		}
	case "conns":
		fmt.Fprintln(tw, "scenario\ttarget\tconns\tKiB/conn\theap KiB/conn\tstack KiB/conn\tRSS before MiB\tRSS after MiB\tconns/s\tp50 ms\tp99 ms\terrors\t")
		for _, s := range sums {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t%.0f\t%.2f\t%.2f\t%d\t\n", s.Scenario, s.Target, s.Conns,
				s.BytesPerConn/1024, s.HeapPerConn/1024, s.StackPerConn/1024, float64(s.RSSBefore)/(1<<20), float64(s.RSSAfter)/(1<<20),
				s.MsgsPerSec, s.P50ms, s.P99ms, s.Errors)
		}
	default:
		fmt.Fprintln(tw, "scenario\ttarget\tsenders\tinflight\tstored\tpulled\tpull s\tevents/s\t50% ms\t99% ms\terrors\tlost\tdups\t")
		for _, s := range sums {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%.3f\t%.0f\t%.1f\t%.1f\t%d\t%d\t%d\t\n", s.Scenario, s.Target, s.Senders, s.Inflight,
				s.Acked, s.Delivered, s.DurationS, s.MsgsPerSec, s.P50ms, s.P99ms, s.Errors, s.Lost, s.Duplicates)
		}
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write table: %w", err)
	}
	for _, s := range sums {
		if s.FirstError != "" {
			fmt.Fprintf(w, "%s: first error: %s\n", s.Target, s.FirstError)
		}
	}
	return nil
}
