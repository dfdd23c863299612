// Tests of the hardware-aware-training weight transforms (layers/tiles/weight_transforms.h).
#include <catch2/catch.hpp>

#include "layers/tiles/weight_transforms.h"
