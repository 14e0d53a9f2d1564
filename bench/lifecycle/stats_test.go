package main

import (
	"math"
	"testing"
)

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		in   []float64
		want float64
	}{
		{[]float64{5}, 5},
		{[]float64{3, 1, 2}, 2},
		{[]float64{4, 1, 3, 2}, 2.5},
		{[]float64{10, 10, 1, 100, 10}, 10},
	} {
		if got := median(tc.in); !near(got, tc.want) {
			t.Errorf("median(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
	if !math.IsNaN(median(nil)) {
		t.Error("median(nil) is not NaN")
	}
}

func TestMedianDoesNotReorderInput(t *testing.T) {
	in := []float64{3, 1, 2}
	median(in)
	if in[0] != 3 || in[1] != 1 || in[2] != 2 {
		t.Errorf("input reordered: %v", in)
	}
}

func TestPercentile(t *testing.T) {
	xs := []float64{10, 1, 9, 2, 8, 3, 7, 4, 6, 5} // 1..10
	for _, tc := range []struct{ p, want float64 }{
		{0, 1},
		{1, 10},
		{0.1, 1.9}, // pos 0.9 between 1 and 2
		{0.9, 9.1}, // pos 8.1 between 9 and 10
		{0.5, 5.5},
		{-1, 1},
		{2, 10},
	} {
		if got := percentile(xs, tc.p); !near(got, tc.want) {
			t.Errorf("percentile(1..10, %v) = %v, want %v", tc.p, got, tc.want)
		}
	}
	if got := percentile([]float64{7}, 0.9); got != 7 {
		t.Errorf("percentile of one value = %v, want 7", got)
	}
}

func TestPairRatios(t *testing.T) {
	a := []float64{2, 3, 10, 4}
	b := []float64{1, 3, 20, 2}
	r := pairRatios(a, b)
	want := []float64{2, 1, 0.5, 2}
	for i := range want {
		if !near(r[i], want[i]) {
			t.Fatalf("pairRatios = %v, want %v", r, want)
		}
	}
	// The median of pair ratios is not the ratio of medians.
	if got := median(r); !near(got, 1.5) {
		t.Errorf("median of pair ratios = %v, want 1.5", got)
	}
	if got := median(a) / median(b); !near(got, 3.5/2.5) {
		t.Errorf("ratio of medians = %v, want 1.4", got)
	}
}

func TestSummarise(t *testing.T) {
	s := summarise("rt", []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 1234, 2)
	if !near(s.MedianMs, 5.5) || !near(s.P10Ms, 1.9) || !near(s.P90Ms, 9.1) || s.MinMs != 1 || s.MaxMs != 10 {
		t.Errorf("summarise: %+v", s)
	}
	if s.PeakRSSKiB != 1234 || s.Failures != 2 || s.Runtime != "rt" {
		t.Errorf("summarise: %+v", s)
	}
}
