// Placeholder translation unit; the event log lands here (issue 2).
namespace modelsync::storage {}
