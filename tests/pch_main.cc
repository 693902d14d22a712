// The target that builds the doctest executables' shared precompiled header
// (tests/CMakeLists.txt): a doctest program with no tests, so that it compiles as they do.
