package main

import (
	"math"
	"sort"
)

// percentile returns the p-quantile (0 <= p <= 1) of xs by linear
// interpolation between the closest ranks (R's type 7, numpy's default):
// p=0 is the minimum, p=1 the maximum, p=0.5 the median. NaN if xs is empty.
func percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	p = math.Min(1, math.Max(0, p))
	pos := p * float64(len(s)-1)
	lo := int(math.Floor(pos))
	if lo >= len(s)-1 {
		return s[len(s)-1]
	}
	frac := pos - float64(lo)
	return s[lo] + frac*(s[lo+1]-s[lo])
}

// median is the middle value, or the mean of the two middle values.
func median(xs []float64) float64 { return percentile(xs, 0.5) }

// pairRatios returns a[i]/b[i] for each pair; a and b have the same length.
func pairRatios(a, b []float64) []float64 {
	r := make([]float64, len(a))
	for i := range a {
		r[i] = a[i] / b[i]
	}
	return r
}

// sideStats summarises one runtime's measured wall times (ms).
type sideStats struct {
	Runtime    string  `json:"runtime"`
	MedianMs   float64 `json:"median_ms"`
	P10Ms      float64 `json:"p10_ms"`
	P90Ms      float64 `json:"p90_ms"`
	MinMs      float64 `json:"min_ms"`
	MaxMs      float64 `json:"max_ms"`
	PeakRSSKiB int64   `json:"peak_rss_kib"`
	Failures   int     `json:"failures"`
}

func summarise(runtime string, ms []float64, peakRSS int64, failures int) sideStats {
	return sideStats{
		Runtime:    runtime,
		MedianMs:   median(ms),
		P10Ms:      percentile(ms, 0.1),
		P90Ms:      percentile(ms, 0.9),
		MinMs:      percentile(ms, 0),
		MaxMs:      percentile(ms, 1),
		PeakRSSKiB: peakRSS,
		Failures:   failures,
	}
}
