// Placeholder translation unit; the hub client lands here (issue 3).
namespace modelsync::net {}
