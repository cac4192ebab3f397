package ondisk

import "math/rand/v2"

// odRand is the tests' deterministic source of random numbers.
func odRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, seed*7+1)) }
