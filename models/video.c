#include "imagebind-preprocess.h"
