package workspace

import "golang.org/x/sys/unix"

// Saved is what a Copy knows after In, for a long-lived sandbox whose
// write-back runs in a later nucleus process (nucleus delete). Keep it
// where only root can write: Back trusts it as it trusts its own memory.
type Saved struct {
	Orig     string                `json:"orig"`
	Dir      string                `json:"dir"`
	MaxBytes int64                 `json:"max_bytes"`
	Dev      uint64                `json:"dev"`
	Ino      uint64                `json:"ino"`
	Kept     []string              `json:"kept,omitempty"`
	Copied   map[string]savedStamp `json:"copied,omitempty"`
}

type savedStamp struct {
	Ino  uint64 `json:"ino"`
	Sec  int64  `json:"ctime_sec"`
	Nsec int64  `json:"ctime_nsec"`
}

// Save records c for Resume.
func (c *Copy) Save() Saved {
	s := Saved{Orig: c.Orig, Dir: c.Dir, MaxBytes: c.MaxBytes, Dev: c.dev, Ino: c.ino, Copied: map[string]savedStamp{}}
	for p := range c.kept {
		s.Kept = append(s.Kept, p)
	}
	for p, st := range c.copied {
		s.Copied[p] = savedStamp{Ino: st.ino, Sec: st.ctim.Sec, Nsec: st.ctim.Nsec}
	}
	return s
}

// Resume is the Copy that Save recorded, ready for Back.
func Resume(s Saved, dropped Dropped) *Copy {
	c := &Copy{Orig: s.Orig, Dir: s.Dir, MaxBytes: s.MaxBytes, dropped: dropped, kept: map[string]bool{}, dev: s.Dev, ino: s.Ino, copied: map[string]stamp{}}
	for _, p := range s.Kept {
		c.kept[p] = true
	}
	for p, st := range s.Copied {
		c.copied[p] = stamp{ino: st.Ino, ctim: unix.Timespec{Sec: st.Sec, Nsec: st.Nsec}}
	}
	return c
}
