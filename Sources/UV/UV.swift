// The safe Swift layer over libuv lives in this folder (being written).
