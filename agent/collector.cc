#include "agent/collector.h"
