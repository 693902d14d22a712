#include "cli/interrupt.h"

#include <signal.h>
#include <unistd.h>

namespace modelsync::cli {
namespace {

std::atomic<bool> g_cancel{false};
std::atomic<int> g_signal{0};
struct sigaction g_old_int, g_old_term;

void OnSignal(int sig) {
  if (g_cancel.load()) _exit(128 + sig);  // the second one: now
  g_signal.store(sig);
  g_cancel.store(true);
}

}  // namespace

Interrupts::Interrupts() {
  g_cancel.store(false);
  g_signal.store(0);
  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  // Interrupted system calls restart: the engine notices the flag where it polls it, and a
  // write cut by the signal never turns into an I/O error.
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, &g_old_int);
  sigaction(SIGTERM, &sa, &g_old_term);
}

Interrupts::~Interrupts() {
  sigaction(SIGINT, &g_old_int, nullptr);
  sigaction(SIGTERM, &g_old_term, nullptr);
}

const std::atomic<bool>* Interrupts::flag() const { return &g_cancel; }

int Interrupts::signal() const { return g_signal.load(); }

std::string Interrupts::SignalName() const {
  switch (signal()) {
    case SIGINT:
      return "SIGINT";
    case SIGTERM:
      return "SIGTERM";
    default:
      return "";
  }
}

}  // namespace modelsync::cli
