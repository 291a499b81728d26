package worker

import (
	"testing"
	"time"
)

func TestVisibilitySeconds(t *testing.T) {
	tests := []struct {
		in   time.Duration
		want int32
	}{
		{-time.Second, 0},
		{0, 0},
		{1500 * time.Millisecond, 2},
		{7 * time.Second, 7},
		{11 * time.Hour, 39600},
		{24 * time.Hour, int32(MaxVisibility / time.Second)},
	}
	for _, tt := range tests {
		if got := visibilitySeconds(tt.in); got != tt.want {
			t.Errorf("visibilitySeconds(%v) = %d, want %d", tt.in, got, tt.want)
		}
	}
	if MaxVisibility > 12*time.Hour {
		t.Errorf("MaxVisibility = %v, above SQS's 12 h", MaxVisibility)
	}
}

func TestDefaultBackoff(t *testing.T) {
	want := map[int]time.Duration{0: 30 * time.Second, 1: 30 * time.Second, 2: time.Minute, 3: 2 * time.Minute, 5: 8 * time.Minute, 8: time.Hour, 100: time.Hour}
	for n, w := range want {
		if got := DefaultBackoff(n); got != w {
			t.Errorf("DefaultBackoff(%d) = %v, want %v", n, got, w)
		}
	}
}
