// Nothing to compile: the header declares libFuzzer's driver (see include/cfuzzer.h).
#include "cfuzzer.h"
