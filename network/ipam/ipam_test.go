package ipam

import (
	"sync"
	"testing"
)

func TestAllocateRelease(t *testing.T) {
	root := t.TempDir()
	a, err := Allocate(root, "a", nil)
	if err != nil {
		t.Fatal(err)
	}
	if a.IPv4.String() != "10.90.0.2" || a.IPv6.String() != "fd6e:7563:6c65:7573::2" {
		t.Fatalf("first lease %v", a)
	}
	b, err := Allocate(root, "b", map[string]bool{"10.90.0.3": true})
	if err != nil {
		t.Fatal(err)
	}
	if b.IPv4.String() != "10.90.0.4" {
		t.Fatalf("second lease skipping .3: %v", b)
	}
	// Only the holder releases.
	if err := Release(root, "b", a.IPv4); err != nil {
		t.Fatal(err)
	}
	if held, _ := Held(root); held["10.90.0.2"] != "a" {
		t.Fatalf("b released a's lease: %v", held)
	}
	if err := Release(root, "a", a.IPv4); err != nil {
		t.Fatal(err)
	}
	if err := Release(root, "a", a.IPv4); err != nil {
		t.Fatalf("second release: %v", err)
	}
	if held, _ := Held(root); len(held) != 1 || held["10.90.0.4"] != "b" {
		t.Fatalf("leases after release: %v", held)
	}
}

func TestAllocateConcurrent(t *testing.T) {
	root := t.TempDir()
	var wg sync.WaitGroup
	seen := sync.Map{}
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l, err := Allocate(root, "c", nil)
			if err != nil {
				t.Error(err)
				return
			}
			if _, dup := seen.LoadOrStore(l.IPv4.String(), true); dup {
				t.Errorf("%s leased twice", l.IPv4)
			}
		}()
	}
	wg.Wait()
}
