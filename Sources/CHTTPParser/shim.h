#ifndef SUTRA_CHTTPPARSER_SHIM_H
#define SUTRA_CHTTPPARSER_SHIM_H
#include <http_parser.h>
#endif
