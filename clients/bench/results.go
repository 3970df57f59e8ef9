package bench

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Result is one line of a results file: a summary with when and how it
// was measured.
type Result struct {
	Time time.Time `json:"time"`
	Args string    `json:"args,omitempty"` // the mqim bench command line
	*Summary
}

// AppendResults appends one JSON line per summary to the results file at
// path, creating it if needed.
func AppendResults(path, args string, sums []*Summary) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("results: %w", err)
	}
	enc := json.NewEncoder(f)
	now := time.Now().UTC().Truncate(time.Second)
	for _, s := range sums {
		if err := enc.Encode(Result{Time: now, Args: args, Summary: s}); err != nil {
			f.Close()
			return fmt.Errorf("results: %w", err)
		}
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("results: %w", err)
	}
	return nil
}

// ReadResults reads a results file.
func ReadResults(r io.Reader) ([]Result, error) {
	var out []Result
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var res Result
		if err := json.Unmarshal(line, &res); err != nil || res.Summary == nil {
			return nil, fmt.Errorf("results: line %d: not a result: %v", n, err)
		}
		out = append(out, res)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("results: %w", err)
	}
	return out, nil
}

// load is the name of a run's load within its scenario: runs of the same
// load against different targets are compared.
func load(s *Summary) string {
	switch s.Scenario {
	case "conns":
		return num(float64(s.Conns)) + " connections"
	case "sync":
		return num(float64(s.Acked)) + " events"
	case "group":
		l := num(float64(s.Members)) + " members"
		if s.Rate > 0 {
			l += ", paced " + strconv.FormatFloat(s.Rate, 'f', -1, 64) + "/s"
		}
		return l
	}
	l := fmt.Sprintf("%d sender%s × %d in flight", s.Senders, plural(s.Senders), s.Inflight)
	if s.Rate > 0 {
		l += ", paced " + strconv.FormatFloat(s.Rate, 'f', -1, 64) + "/s"
	}
	return l
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// targetOrder puts mqimd first, then the references.
func targetOrder(a, b string) int {
	rank := func(t string) int {
		switch t {
		case "mqimd":
			return 0
		case "bare":
			return 1
		case "mosquitto":
			return 2
		}
		return 3
	}
	if c := rank(a) - rank(b); c != 0 {
		return c
	}
	return strings.Compare(a, b)
}

// latest keeps, for each scenario, load and target, the most recent result
// (the last in the file), in first-seen order of loads.
func latest(results []Result, scenario string) (loads []string, targets []string, by map[[2]string]Result) {
	by = map[[2]string]Result{}
	for _, r := range results {
		if r.Scenario != scenario {
			continue
		}
		l := load(r.Summary)
		if !slices.Contains(loads, l) {
			loads = append(loads, l)
		}
		if !slices.Contains(targets, r.Target) {
			targets = append(targets, r.Target)
		}
		by[[2]string{l, r.Target}] = r
	}
	slices.SortFunc(targets, targetOrder)
	return loads, targets, by
}

// Report writes the Markdown tables of the results (the latest run of
// each scenario, load and target) to w, and one SVG bar chart per scenario
// into chartDir, linked from the tables as chartLink/NAME.svg.
func Report(w io.Writer, results []Result, chartDir, chartLink string) error {
	var errs []error
	for _, sc := range []struct {
		name, title, metric, unit string
		value                     func(*Summary) float64
		header                    string
		row                       func(*Summary) string
	}{
		{"1to1", "1:1 messaging", "messages acknowledged per second", "msg/s",
			func(s *Summary) float64 { return s.MsgsPerSec },
			"| load | target | msg/s | delivered/s | p50 / p99 / p99.9 ms | errors / lost / dups | measured |",
			func(s *Summary) string {
				return fmt.Sprintf("%s | %s | %.2f / %.2f / %.2f | %d / %d / %d", num(s.MsgsPerSec), num(s.DeliveredPerSec),
					s.P50ms, s.P99ms, s.P999ms, s.Errors, s.Lost, s.Duplicates)
			}},
		{"group", "Group fan-out", "deliveries per second (a message times its members)", "deliveries/s",
			func(s *Summary) float64 { return s.MsgsPerSec },
			"| load | target | fan-out | deliveries/s | messages | p50 / p99 / p99.9 ms send → last member | errors / lost / dups / out of order | measured |",
			func(s *Summary) string {
				fanout := s.Fanout
				if fanout == "" {
					fanout = "topic"
				}
				return fmt.Sprintf("%s | %s | %d | %.2f / %.2f / %.2f | %d / %d / %d / %d", fanout, num(s.MsgsPerSec), s.Acked,
					s.P50ms, s.P99ms, s.P999ms, s.Errors, s.Lost, s.Duplicates, s.OutOfOrder)
			}},
		{"sync", "Offline sync pull", "time to pull every missed event (lower is better)", "ms",
			func(s *Summary) float64 { return s.DurationS * 1000 },
			"| load | target | pull time s | events/s | 50 % / 99 % pulled after ms | stored / pulled | errors / lost / dups | measured |",
			func(s *Summary) string {
				return fmt.Sprintf("%.3f | %s | %.1f / %.1f | %d / %d | %d / %d / %d", s.DurationS, num(s.MsgsPerSec),
					s.P50ms, s.P99ms, s.Acked, s.Delivered, s.Errors, s.Lost, s.Duplicates)
			}},
		{"conns", "Idle connections", "server memory per idle connection (lower is better)", "KiB",
			func(s *Summary) float64 { return s.BytesPerConn / 1024 },
			"| load | target | KiB per connection (RSS) | Go heap / stacks KiB per connection | RSS before → after MiB | connections/s | p50 / p99 connect ms | errors | measured |",
			func(s *Summary) string {
				heap := "—"
				if s.HeapPerConn != 0 {
					heap = fmt.Sprintf("%.1f / %.1f", s.HeapPerConn/1024, s.StackPerConn/1024)
				}
				return fmt.Sprintf("%.1f | %s | %.0f → %.0f | %s | %.2f / %.2f | %d", s.BytesPerConn/1024, heap,
					float64(s.RSSBefore)/(1<<20), float64(s.RSSAfter)/(1<<20), num(s.MsgsPerSec), s.P50ms, s.P99ms, s.Errors)
			}},
	} {
		loads, targets, by := latest(results, sc.name)
		if len(loads) == 0 {
			continue
		}
		fmt.Fprintf(w, "### %s\n\n", sc.title)
		if chartDir != "" {
			svg := BarChart(sc.title+": "+sc.metric, sc.unit, loads, targets, func(l, t string) (float64, bool) {
				r, ok := by[[2]string{l, t}]
				if !ok {
					return 0, false
				}
				return sc.value(r.Summary), true
			})
			name := "bench-" + sc.name + ".svg"
			if err := os.WriteFile(filepath.Join(chartDir, name), svg, 0o644); err != nil {
				errs = append(errs, fmt.Errorf("report: %w", err))
			}
			fmt.Fprintf(w, "![%s](%s)\n\n", sc.title, chartLink+"/"+name)
		}
		fmt.Fprintln(w, sc.header)
		fmt.Fprintln(w, "|"+strings.Repeat("---|", strings.Count(sc.header, "|")-1))
		for _, l := range loads {
			for _, t := range targets {
				r, ok := by[[2]string{l, t}]
				if !ok {
					continue
				}
				fmt.Fprintf(w, "| %s | %s | %s | %s |\n", l, t, sc.row(r.Summary), r.Time.Format("2006-01-02 15:04"))
			}
		}
		fmt.Fprintln(w)
		var cmds []string
		for _, l := range loads {
			for _, t := range targets {
				if r, ok := by[[2]string{l, t}]; ok && r.Args != "" && !slices.Contains(cmds, r.Args) {
					cmds = append(cmds, r.Args)
				}
			}
		}
		if len(cmds) > 0 {
			fmt.Fprintf(w, "```sh\n%s\n```\n\n", strings.Join(cmds, "\n"))
		}
	}
	return errors.Join(errs...)
}

// num formats a rate with thousands separators.
func num(f float64) string {
	s := strconv.FormatInt(int64(math.Round(f)), 10)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 && c != '-' && s[i-1] != '-' {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// Replace rewrites the part of doc between the lines BeginMarker and
// EndMarker with fragment.
func Replace(doc, fragment []byte) ([]byte, error) {
	begin := bytes.Index(doc, []byte(BeginMarker))
	end := bytes.Index(doc, []byte(EndMarker))
	if begin < 0 || end < begin {
		return nil, fmt.Errorf("report: the document has no %s … %s section", BeginMarker, EndMarker)
	}
	var out bytes.Buffer
	out.Write(doc[:begin+len(BeginMarker)])
	out.WriteString("\n\n")
	out.Write(bytes.TrimSpace(fragment))
	out.WriteString("\n\n")
	out.Write(doc[end:])
	return out.Bytes(), nil
}

// The markers of the generated section of docs/BENCHMARKS.md.
const (
	BeginMarker = "<!-- mqim bench report: begin -->"
	EndMarker   = "<!-- mqim bench report: end -->"
)

var palette = []string{"#3b6fb6", "#e08a2e", "#4a9a5b", "#b04a78", "#7a6bb5"}

// BarChart draws a grouped bar chart as SVG: one group per entry of
// groups, one bar per series within it, value(group, series) its height
// (missing bars are left out).
func BarChart(title, unit string, groups, series []string, value func(group, series string) (float64, bool)) []byte {
	const (
		barW, gap, groupGap = 34, 4, 36
		left, top, plotH    = 70, 50, 240
		bottom              = 100
		minGroupW           = 170 // room for the group's label
	)
	var peak float64
	for _, g := range groups {
		for _, s := range series {
			if v, ok := value(g, s); ok {
				peak = max(peak, v)
			}
		}
	}
	scaleMax := niceCeil(peak)
	ticks := 5
	if m := scaleMax / math.Pow(10, math.Floor(math.Log10(scaleMax))); m > 1.5 && m < 2.5 {
		ticks = 4 // 2·10^k in quarters
	}
	barsW := len(series)*(barW+gap) - gap
	groupW := max(barsW, minGroupW)
	width := left + len(groups)*(groupW+groupGap) + 20
	width = max(width, 420, 8*len([]rune(title))+30)
	height := top + plotH + bottom + 18*((len(series)+2)/3)
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", width, height, width, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="#fff"/>`+"\n")
	fmt.Fprintf(&b, `<text x="%d" y="24" font-size="15" font-weight="bold">%s</text>`+"\n", left-60, html.EscapeString(title))
	// Axis and grid.
	for i := 0; i <= ticks; i++ {
		v := scaleMax * float64(i) / float64(ticks)
		y := top + plotH - int(float64(plotH)*float64(i)/float64(ticks))
		fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#ddd"/>`+"\n", left, y, width-10, y)
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end" fill="#555">%s</text>`+"\n", left-6, y+4, short(v))
	}
	fmt.Fprintf(&b, `<text x="12" y="%d" transform="rotate(-90 12 %d)" text-anchor="middle" fill="#555">%s</text>`+"\n", top+plotH/2, top+plotH/2, html.EscapeString(unit))
	for gi, g := range groups {
		x0 := left + 10 + gi*(groupW+groupGap)
		for si, s := range series {
			v, ok := value(g, s)
			if !ok {
				continue
			}
			h := 0
			if scaleMax > 0 {
				h = int(math.Round(float64(plotH) * v / scaleMax))
			}
			x := x0 + (groupW-barsW)/2 + si*(barW+gap)
			fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" fill="%s"><title>%s, %s: %s %s</title></rect>`+"\n",
				x, top+plotH-h, barW, h, palette[si%len(palette)], html.EscapeString(g), html.EscapeString(s), short(v), html.EscapeString(unit))
			fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle" font-size="10">%s</text>`+"\n", x+barW/2, top+plotH-h-4, short(v))
		}
		// The label on up to two lines, split at its first comma.
		first, second, _ := strings.Cut(g, ", ")
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle" fill="#333">%s</text>`+"\n", x0+groupW/2, top+plotH+18, html.EscapeString(first))
		if second != "" {
			fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle" fill="#333">%s</text>`+"\n", x0+groupW/2, top+plotH+33, html.EscapeString(second))
		}
	}
	fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#333"/>`+"\n", left, top+plotH, width-10, top+plotH)
	for si, s := range series {
		x := left + (si%3)*140
		y := top + plotH + 58 + 18*(si/3)
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="12" height="12" fill="%s"/><text x="%d" y="%d">%s</text>`+"\n", x, y-10, palette[si%len(palette)], x+18, y, html.EscapeString(s))
	}
	b.WriteString("</svg>\n")
	return []byte(b.String())
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

// short formats a value compactly: 12.3, 456, 7.8k, 12k.
func short(v float64) string {
	switch {
	case v >= 10000:
		return strconv.FormatFloat(math.Round(v/1000), 'f', -1, 64) + "k"
	case v >= 1000:
		return strconv.FormatFloat(math.Round(v/100)/10, 'f', -1, 64) + "k"
	case v >= 100:
		return strconv.FormatFloat(math.Round(v), 'f', -1, 64)
	default:
		return strconv.FormatFloat(math.Round(v*10)/10, 'f', -1, 64)
	}
}
