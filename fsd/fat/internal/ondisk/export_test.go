package ondisk

import "flag"

// GenSeeds (-odgenseeds) makes the seed tests rewrite the fuzz corpora in
// testdata/fuzz: TestFuzzOwnershipSeeds here, and TestOndiskFuzzSeeds among
// the external tests (package ondisk_test), which see it through this file.
var GenSeeds = flag.Bool("odgenseeds", false, "rewrite the on-disk fuzz seed corpora in testdata/fuzz")
